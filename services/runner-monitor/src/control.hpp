#pragma once
// The control and query handler: one request frame in, one reply frame out.
// Pure logic over the table (the ROUTER socket lives in the service).
// Thread-safe as far as the table is; its only state is a log rate limiter
// (thread-safe). An operator's release of the storm brake is posted to the
// dispatcher's BrakeReleaseRequest (thread-safe).

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "guards.hpp"
#include "monitor_stats.hpp"
#include "rmon/clock.hpp"
#include "rmon/logging.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

inline constexpr std::size_t kDefaultListLimit = 1000;
inline constexpr std::size_t kMaxListLimit = 100'000;

class ControlHandler {
 public:
  // `lookup` replies say how long the monitor has been up: since this
  // handler was built (after the saved table was restored, as serving begins).
  // `brake_release` (the dispatcher's) must outlive the handler.
  ControlHandler(RunnerTable& table, MonitorStats& stats, BrakeReleaseRequest& brake_release,
                 const Clock& clock)
      : table_(table),
        stats_(stats),
        brake_release_(brake_release),
        clock_(clock),
        started_(clock.now()) {}

  // Refuses a decoded request's op (--security curve): a detail for the
  // `forbidden` reply, or nullopt to go ahead.
  using OpCheck = std::function<std::optional<std::string>(protocol::Op)>;

  // Never throws: a bad request gets an error reply and changes nothing, and
  // one `check` refuses gets {ok: false, error: "forbidden", detail}.
  std::string handle(std::string_view request, const OpCheck& check = {});
  protocol::ControlReply handle(const protocol::ControlRequest& request);

 private:
  protocol::ControlReply stats_reply() const;

  RunnerTable& table_;
  MonitorStats& stats_;
  BrakeReleaseRequest& brake_release_;
  const Clock& clock_;
  const MonoTime started_;
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon::monitor
