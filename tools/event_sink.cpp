// rmon-event-sink: a minimal consumer of timeout events for one group. It logs
// each event and acknowledges it (unless --no-ack), deduplicating by
// event_id. It stands in for task-queue and pool-manager in the local stack
// until those services exist, and stages faults in manual tests.

#include <spdlog/spdlog.h>

#include <csignal>
#include <unordered_set>

#include "rmon/config.hpp"
#include "rmon/logging.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  std::string group = "task-queue";
  std::string events = "tcp://127.0.0.1:5556";
  std::string acks = "tcp://127.0.0.1:5558";
  bool no_ack = false;
  rmon::Settings s("rmon-event-sink", "Logs and acknowledges timeout events for one group.");
  s.add("group", group, "Consumer group name (sent in each ack)");
  s.add("events", events, "Monitor PUSH endpoint of this group to connect to");
  s.add("acks", acks, "Monitor acknowledgement endpoint to connect to");
  s.add_flag("no-ack", no_ack, "Never acknowledge (to watch redelivery)");
  if (auto code = s.parse(argc, argv)) return *code;
  rmon::init_logging("event-sink:" + group, s.log_level());
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  zmq::context_t ctx;
  rmon::SocketOptions opts;
  opts.recv_timeout_ms = 200;
  opts.linger_ms = 1000;
  auto pull = rmon::make_socket(ctx, zmq::socket_type::pull, opts);
  pull.connect(events);
  auto push = rmon::make_socket(ctx, zmq::socket_type::push, opts);
  push.connect(acks);
  spdlog::info("event sink started group={} events={} acks={} ack={}", group, events, acks,
               !no_ack);

  std::unordered_set<std::string> seen;
  std::vector<zmq::message_t> frames;
  while (!g_stop) {
    try {
      if (!rmon::recv_frames(pull, frames)) continue;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (frames.size() != 1) continue;
    auto ev = rmon::protocol::decode_timeout_event(frames[0].to_string_view());
    if (!ev) {
      spdlog::warn("bad event reason={}", ev.error().to_string());
      continue;
    }
    const bool repeat = !seen.insert(ev->event_id).second;
    spdlog::info(
        "timeout event event_id={} delivery={} repeat={} runner_id={} task_id={} attempt={} "
        "pool={} last_seq={} timeout_ms={}",
        ev->event_id, ev->delivery, repeat, ev->runner.runner_id, ev->runner.task_id,
        ev->runner.attempt, ev->runner.pool, ev->last_seq, ev->timeout_ms);
    if (!no_ack) {
      rmon::send_frames(push, {rmon::protocol::encode_ack({group, ev->event_id})},
                        zmq::send_flags::none);
    }
  }
  return 0;
}
