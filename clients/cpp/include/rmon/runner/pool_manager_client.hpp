#pragma once
// A client of the pool-manager's API: acquire, release, status, stats.
// Not thread-safe: one client per thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rmon/runner/api_client.hpp"

namespace rmon::runner {

inline constexpr char kDefaultPoolManagerEndpoint[] = "tcp://127.0.0.1:5561";

struct SlotHolder {
  uint64_t slot = 0;
  std::string runner_id;
  std::string task_id;
  uint64_t attempt = 0;
  int64_t since_ms = 0;
};

struct PoolStatus {
  std::string name;
  std::string type;
  uint64_t slots = 0;
  uint64_t in_use = 0;
  std::vector<SlotHolder> holders;
};

class PoolManagerClient {
 public:
  // `keys`: a CURVE client (ApiClient).
  PoolManagerClient(zmq::context_t& ctx, std::string endpoint = kDefaultPoolManagerEndpoint,
                    int timeout_ms = 5000, std::optional<security::ClientKeys> keys = std::nullopt)
      : api_(ctx, std::move(endpoint), timeout_ms, std::move(keys)) {}
  // Replicas of the service: a request unanswered in time goes to the next
  // (ApiClient).
  PoolManagerClient(zmq::context_t& ctx, std::vector<std::string> endpoints, int timeout_ms = 5000,
                    std::optional<security::ClientKeys> keys = std::nullopt)
      : api_(ctx, std::move(endpoints), timeout_ms, std::move(keys)) {}

  // The slot index; `pool_full`, `not_found` (unknown pool) or `conflict`
  // (this runner holds a slot of the pool for another attempt) otherwise.
  Outcome<uint64_t> acquire(const std::string& pool, const std::string& runner_id,
                            const std::string& task_id, uint64_t attempt);
  // False when the runner held nothing.
  Outcome<bool> release(const std::string& runner_id,
                        const std::optional<std::string>& pool = std::nullopt);
  Outcome<std::vector<PoolStatus>> status(const std::optional<std::string>& pool = std::nullopt);
  Outcome<std::map<std::string, uint64_t>> stats();
  Outcome<Done> ping();
  // Replicas: requests moved to the next endpoint so far.
  uint64_t failovers() const { return api_.failovers(); }

 private:
  ApiClient api_;
};

}  // namespace rmon::runner
