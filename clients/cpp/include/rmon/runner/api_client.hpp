#pragma once
// The request/reply client under every runner-side client (task-queue,
// pool-manager, runner-monitor): one DEALER socket, one request in flight, a
// timeout on every reply. After a timeout the socket is replaced, so a late
// reply can never be taken for the next request's. Expected failures
// (timeouts, error replies) are values: Outcome<T>.
//
// Several endpoints (replicas of a service on a shared store, contract
// "Replicas"): requests go to one of them; a request that gets no answer in
// time is sent again to the next, and so on once around the list, and the
// client stays with the endpoint that answered. A `submit` with an
// idempotency_key is safe to send twice; a `lease` whose answer was lost is
// taken back by reconciliation.
//
// Not thread-safe: one client per thread.

#include <zmq.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "rmon/expected.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/security/client.hpp"

namespace rmon::runner {

// Why a call failed: the service's error code (`not_found`, `stale_attempt`,
// `conflict`, `pool_full`, `unavailable`, `bad_request`, ...) or this
// client's own: `timeout` (no reply in time) and `bad_reply` (a reply that is
// not what the contract says), and with CURVE `not_enrolled` (the service
// refused this client's key at the handshake; the detail names the key).
struct ApiError {
  std::string code;
  std::string detail;
  std::string to_string() const { return code + ": " + detail; }
};

// A call's value or its ApiError.
template <class T>
using Outcome = Expected<T, ApiError>;

struct Done {};  // the value of a call that returns nothing but success

class ApiClient {
 public:
  // Connects to `endpoint` (e.g. "tcp://127.0.0.1:5560"), as a CURVE client
  // with `keys` (security::ClientSecurity::keys_for()); throws zmq::error_t
  // on a malformed endpoint. A refused key answers calls `not_enrolled`,
  // at once while the retry backs off (100 ms doubling to 5 s), then it
  // tries again: a key enrolled meanwhile is let in.
  ApiClient(zmq::context_t& ctx, std::string endpoint, int timeout_ms = 5000,
            std::optional<security::ClientKeys> keys = std::nullopt);
  // Replicas: one to `endpoints.size()` tries per request (throws
  // std::invalid_argument when the list is empty).
  ApiClient(zmq::context_t& ctx, std::vector<std::string> endpoints, int timeout_ms = 5000,
            std::optional<security::ClientKeys> keys = std::nullopt);

  // Sends {v: 1, op, ...fields}; on success returns the reply frame, whose
  // `ok` is true. Error replies and timeouts are ApiErrors.
  Outcome<std::string> call(std::string_view op, const protocol::MapBuilder& fields = {});
  // Sends one request frame as it is and returns the reply frame, whatever it
  // says; only a timeout is an error.
  Outcome<std::string> exchange(const std::string& frame);

  // The endpoint requests go to now.
  const std::string& endpoint() const { return endpoints_[current_]; }
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // Requests moved to the next endpoint (one unanswered) so far.
  uint64_t failovers() const { return failovers_; }

 private:
  static SocketOptions options(int timeout_ms);
  ApiError not_enrolled() const;
  // One try on the current endpoint; nullopt when no reply came in time.
  std::optional<Outcome<std::string>> try_exchange(const std::string& frame);
  void next_endpoint();

  zmq::context_t& ctx_;
  const std::vector<std::string> endpoints_;
  std::size_t current_ = 0;
  uint64_t failovers_ = 0;
  const int timeout_ms_;
  const std::optional<security::ClientKeys> keys_;
  std::unique_ptr<security::ClientSocket> socket_;
};

// Reads a reply frame with `read(MapReader&) -> Status`; a reply that does
// not parse or lacks what `read` needs is a `bad_reply`.
template <class Read>
std::optional<ApiError> read_reply(const std::string& frame, Read&& read) {
  auto m = protocol::MapReader::parse(frame, protocol::kMaxReplyFrame);
  if (!m) return ApiError{"bad_reply", m.error().to_string()};
  if (protocol::Status s = read(m.value()); !s) return ApiError{"bad_reply", s.error().to_string()};
  return std::nullopt;
}

}  // namespace rmon::runner
