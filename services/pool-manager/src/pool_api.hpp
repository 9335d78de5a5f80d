#pragma once
// pool-manager's BatchHandler: decodes API requests (MapReader), applies them
// and the monitor's timeout events to the PoolStore in one transaction per
// batch (each under its own savepoint), and runs the first-heartbeat grace
// and event-id pruning in tick(). Replies and acks leave only after the
// commit (run_batch_loop sends them when apply() returns). A failed commit
// answers the whole batch `unavailable` and acknowledges nothing.
//
// Ops (docs/PROTOCOL.md, "Pools"): acquire, release, status, stats. A request
// that is not a map, lacks `v: 1`, or has a missing, mistyped or oversized
// key gets bad_request with the rejection as detail and changes nothing; an
// op this version does not know gets unknown_op.
//
// Not thread-safe: runs on the service's loop thread.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "pool_metrics.hpp"
#include "pool_store.hpp"
#include "rmon/clock.hpp"
#include "rmon/logging.hpp"
#include "rmon/protocol/limits.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/service/batch_loop.hpp"

namespace rmon::pool {

struct ApiOptions {
  // A status reply stops adding holders before this many bytes and says
  // `truncated: true`.
  std::size_t max_reply_bytes = protocol::kMaxListReplyBytes;
  std::size_t max_probe_queue = 1024;  // first-heartbeat checks queued at once
  Millis prune_interval{60'000};       // how often old event ids are forgotten
};

class PoolApi final : public BatchHandler {
 public:
  // `probe` may be null (no first-heartbeat checks). All references outlive
  // this object.
  PoolApi(PoolStore& store, PoolMetrics& metrics, MonitorProbe* probe, const Clock& clock,
          Millis grace, ApiOptions options = {});

  void apply(std::vector<Request>& requests, std::vector<ConsumedEvent>& events) override;
  void on_probe_results(std::vector<ProbeResult>& results) override;
  void tick() override;

  // Called after the commit for each timeout event that freed a slot, with
  // its release lateness: commit time minus the runner's deadline
  // (last_heartbeat_ms + timeout_ms, the monitor's wall clock), in ms.
  std::function<void(const protocol::TimeoutEvent&, int64_t lateness_ms)> on_released;

 private:
  struct Handled {
    ApiOp op = ApiOp::kInvalid;
    Outcome outcome = Outcome::kOk;
  };
  // A log line held back until the batch is committed.
  struct Note {
    spdlog::level::level_enum level;
    std::string text;
  };

  Handled handle(Request& r);
  Handled reject(Request& r, ApiOp op, const protocol::Rejection& why);
  Handled fail(Request& r, ApiOp op, Outcome outcome, const std::string& detail);
  Handled acquire(Request& r, const protocol::MapReader& m);
  Handled release(Request& r, const protocol::MapReader& m);
  Handled status(Request& r, const protocol::MapReader& m);
  Handled stats(Request& r);
  // `released` is set when the event freed a slot.
  bool handle_event(const protocol::TimeoutEvent& ev, char& released);
  void note(spdlog::level::level_enum level, std::string text);
  void flush_notes();
  void storage_error(const char* what, const std::exception& e);
  bool try_resync();

  PoolStore& store_;
  PoolMetrics& metrics_;
  MonitorProbe* const probe_;
  const Clock& clock_;
  const Millis grace_;
  const ApiOptions options_;
  std::vector<char> released_;  // per event of the batch being applied
  bool needs_resync_ = false;   // the mirror may differ from the database
  MonoTime next_prune_{};
  std::vector<Note> notes_;
  std::vector<Handled> handled_;
  std::vector<char> event_done_;
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon::pool
