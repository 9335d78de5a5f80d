#include "rmon/service/batch_loop.hpp"

#include <algorithm>

namespace rmon {

void run_batch_loop(zmq::socket_t& api, EventConsumer& events, MonitorProbe* probe,
                    BatchHandler& handler, const Clock& clock, const std::atomic<bool>& stop,
                    const BatchLoopOptions& opts) {
  std::vector<Request> requests;
  std::vector<ConsumedEvent> consumed;
  std::vector<ProbeResult> results;
  MonoTime next_tick = clock.now();
  while (!stop.load(std::memory_order_relaxed)) {
    MonoTime now = clock.now();
    if (now >= next_tick) {
      handler.tick();
      next_tick = now + opts.tick_interval;
    }
    MonoTime wake = std::min(next_tick, now + opts.stop_check);
    if (probe) {
      if (auto due = probe->next_due()) wake = std::min(wake, *due);
    }
    const auto wait_ms = std::max<int64_t>(0, ms_between(now, wake) + 1);
    zmq::pollitem_t items[3] = {{api.handle(), 0, ZMQ_POLLIN, 0},
                                {events.events_socket().handle(), 0, ZMQ_POLLIN, 0},
                                {probe ? probe->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, probe ? 3 : 2, std::chrono::milliseconds(wait_ms));

    requests.clear();
    consumed.clear();
    receive_requests(api, requests, opts.max_batch);
    events.receive(consumed, opts.max_batch);
    if (!requests.empty() || !consumed.empty()) {
      handler.apply(requests, consumed);
      send_replies(api, requests);
      events.send_acks(consumed);
    }
    if (probe && !probe->idle()) {
      results.clear();
      probe->poll(clock.now(), results);
      if (!results.empty()) handler.on_probe_results(results);
    }
  }
}

}  // namespace rmon
