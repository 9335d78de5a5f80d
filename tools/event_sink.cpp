// rmon-event-sink: a minimal consumer of timeout events for one group, for
// experiments and manual fault staging. It logs each event and acknowledges
// it (unless --no-ack), deduplicating by event_id.
//
// Safe by default. The monitor sends each group's events on one PUSH socket,
// which deals them round-robin between every PULL connected to it: a sink
// attached to a group a service consumes (task-queue, pool-manager) takes
// about half of that service's events, acknowledged or not. Acknowledged, the
// service never sees them (tasks stay leased, slots held); unacknowledged,
// it sees them a redelivery interval late. So the sink refuses those groups
// (by name, and by their default event ports) unless given --steal, and even
// then acknowledges nothing without --ack. The safe way to watch every event
// is a group of its own: every group gets every event.
//
// Its environment variables are its own, RMON_EVENT_SINK_<FLAG>: the
// services' RMON_<FLAG> would name the monitor's groups (RMON_GROUP) and
// endpoints, and a shell exporting those must not point the sink at a
// service's socket.

#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <string>
#include <string_view>
#include <unordered_set>

#include "rmon/config.hpp"
#include "rmon/logging.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/security/client.hpp"
#include "rmon/zmq_util.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// The groups the stack's services consume, and their default event ports.
bool consumed_by_a_service(const std::string& group, const std::string& endpoint) {
  if (group == "task-queue" || group == "pool-manager") return true;
  return endpoint.ends_with(":5556") || endpoint.ends_with(":5557");
}

constexpr std::string_view kEnvPrefix = "RMON_EVENT_SINK_";

constexpr const char* kWhy =
    "the monitor's PUSH socket deals a group's events round-robin between every PULL connected "
    "to it, so this sink would take about half of them from the service that consumes the "
    "group: acknowledged, that service never sees them (tasks stay leased, slots held); "
    "unacknowledged, it sees them a redelivery interval late. To watch every event, give the "
    "monitor a group of its own for the sink (every group gets every event), e.g. --group "
    "task-queue=tcp://127.0.0.1:5556,pool-manager=tcp://127.0.0.1:5557,"
    "debug=tcp://127.0.0.1:5599, and run "
    "rmon-event-sink --group debug --events tcp://127.0.0.1:5599. --steal attaches anyway "
    "(never acknowledging unless --ack is given too)";

}  // namespace

int main(int argc, char** argv) {
  std::string group = "debug";
  std::string events = "tcp://127.0.0.1:5599";
  std::string acks = "tcp://127.0.0.1:5558";
  bool ack = true;
  bool steal = false;
  rmon::Settings s("rmon-event-sink",
                   "Logs and acknowledges the timeout events of a consumer group of its own.",
                   kEnvPrefix);
  s.app().footer(
      "Each setting may also come from RMON_EVENT_SINK_<FLAG> (e.g. RMON_EVENT_SINK_GROUP); the "
      "services' RMON_<FLAG> variables are not read.");
  s.add("group", group, "Consumer group name (sent in each ack); a group of the sink's own");
  s.add("events", events, "The monitor's PUSH endpoint of that group, to connect to");
  s.add("acks", acks, "Monitor acknowledgement endpoint to connect to");
  CLI::Option* ack_opt = s.add_flag(
      "ack", ack,
      "Acknowledge each event: by default on a group of the sink's own, with --steal only when "
      "given (that service then never sees what the sink took). --no-ack never acknowledges, to "
      "watch redelivery");
  s.add_flag("steal", steal,
             "Attach even to a group a service consumes (task-queue, pool-manager, or their "
             "default ports 5556, 5557): takes about half of that service's events");
  rmon::security::ClientSecurity security;
  security.add_options(s.app(), kEnvPrefix);
  if (auto code = s.parse(argc, argv)) return *code;
  // --security curve: a consumer key of the sink's group (or an admin's).
  auto keys = security.keys_for(rmon::security::kMonitorService);
  if (!keys) {
    std::cerr << "rmon-event-sink: " << keys.error().message << "\n";
    return 2;
  }
  const bool service_group = consumed_by_a_service(group, events);
  if (service_group && !steal) {
    std::cerr << "rmon-event-sink: refusing to attach to group " << group << " at " << events
              << ": " << kWhy << "\n";
    return 2;
  }
  if (service_group) ack = ack && ack_opt->count() > 0;  // stolen: only when asked
  rmon::init_logging("event-sink:" + group, s.log_level());
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (service_group) {
    spdlog::warn(
        "attached with --steal to a group a service consumes: this sink takes about half of its "
        "events; {} group={} events={}",
        ack ? "acknowledged, they never reach that service"
            : "not acknowledged, they reach that service a redelivery interval late",
        group, events);
  }

  zmq::context_t ctx;
  rmon::SocketOptions opts;
  opts.recv_timeout_ms = 200;
  opts.linger_ms = 1000;
  rmon::security::ClientSocket pull_socket(ctx, zmq::socket_type::pull, opts, events, keys.value());
  rmon::security::ClientSocket push_socket(ctx, zmq::socket_type::push, opts, acks, keys.value());
  spdlog::info("event sink started group={} events={} acks={} ack={} security={}", group, events,
               acks, ack, security.mode);

  std::unordered_set<std::string> seen;
  std::vector<zmq::message_t> frames;
  while (!g_stop) {
    (void)pull_socket.maintain();  // a refused key: logged, retried with backoff
    (void)push_socket.maintain();
    zmq::socket_t& pull = pull_socket.socket();
    zmq::socket_t& push = push_socket.socket();
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
    if (ack) {
      rmon::send_frames(push, {rmon::protocol::encode_ack({group, ev->event_id})},
                        zmq::send_flags::none);
    }
  }
  spdlog::shutdown();  // writes what the asynchronous logger still holds
  return 0;
}
