#pragma once
// A domain's API without sockets: one request through its batch policy, as
// the service loop applies it (a batch of its own), the reply encoded.

#include <string>

#include "rmon/protocol/msgmap.hpp"
#include "rmon/service/batch_policy.hpp"

namespace rmon::testing {

inline std::string apply_request(BatchPolicy& policy, const std::string& body) {
  Batch b;
  b.requests.resize(1);
  b.requests[0].body = zmq::message_t(body.data(), body.size());
  policy.apply(b);
  return b.requests[0].reply;
}

inline std::string call_op(BatchPolicy& policy, const std::string& op,
                           const protocol::MapBuilder& fields = {}) {
  protocol::MapBuilder m;
  m.u64("v", 1).str("op", op).extend(fields);
  return apply_request(policy, m.finish());
}

// A u64 of a reply (0 when absent).
inline uint64_t reply_u64(const std::string& reply, const char* key) {
  auto m = protocol::MapReader::parse(reply);
  uint64_t v = 0;
  if (m.ok()) (void)m->u64(key, v);
  return v;
}

}  // namespace rmon::testing
