#pragma once
// The consumer faults' shared stage (issue #9's fault suite): the real stack
// as processes, every runner holding a leased task and a pool slot and
// heartbeating with them; a live fleet and a fleet of runners to cut. Plus
// the queries that check what the task-queue and pool-manager hold.
//
// Not thread-safe: a fixture belongs to the test thread.

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "fault_support.hpp"

namespace rmon::fault {

inline constexpr char kPool[] = "fault";

struct Lease {
  std::string task_id;
  uint64_t attempt = 0;
};

// The lease reply's task (empty task_id for `task: nil` or an error).
Lease read_lease(const std::string& reply, std::string* runner_id = nullptr);
// (task_id -> (attempt, runner_id or "")) of every task in `state`, paged.
std::map<std::string, std::pair<uint64_t, std::string>> list_tasks(testing::ApiClient& c,
                                                                   const std::string& state);
// runner_id -> (task_id, attempt) of every holder of `pool`.
std::map<std::string, Lease> holders(testing::ApiClient& c, const std::string& pool);

class ConsumerFaults : public ::testing::Test {
 protected:
  void SetUp() override;

  // Cuts runners [first, last) of the cut fleet, spread over a second; once
  // a quarter of their timeouts are detected kills `victim` with SIGKILL and
  // restarts it; waits for every effect and checks the state.
  void phase(Svc victim, std::size_t first, std::size_t last);

  // Fixtures that need other settings change them here.
  virtual void adjust(StackOptions& o) { (void)o; }

  struct Checked {
    uint64_t requeued = 0, live_tasks = 0, freed = 0, live_slots = 0;
  };

  // The state every service must be in with dead_ timed out, each once.
  Checked check();

  std::size_t n_ = 0, batch_ = 0;
  std::unique_ptr<FaultStack> stack_;
  std::unique_ptr<testing::ApiClient> mon_, tq_, pm_;
  std::unique_ptr<FleetPublisher> live_, cut_;
  std::map<std::string, Lease> lease_;  // runner_id -> its lease
  std::set<std::string> dead_;          // runners cut so far
};

}  // namespace rmon::fault
