#pragma once
// The console's way to the three services: one request/reply client each
// (rmon::runner's ApiClient, the one the runner libraries and rmon-ctl use),
// each behind its own mutex (a client is one socket, one request in flight),
// and every reply turned into JSON for the pages.
//
// Thread-safe.

#include <zmq.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "console_config.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/runner/api_client.hpp"

namespace rmon::console {

enum class Service { kMonitor, kTaskQueue, kPoolManager };
std::string_view name(Service s);

// What the console answers a page: an HTTP status and a JSON body. A
// service's success is its reply as JSON (`ok: true`, as the contract has
// it); a failure is {ok: false, service, error, detail, message} with
// `message` in plain words for the page to show.
struct JsonReply {
  int status = 200;
  std::string body;
};

class Gateway {
 public:
  explicit Gateway(const ConsoleConfig& config);
  ~Gateway();

  // A task-queue or pool-manager request {v: 1, op, ...fields}.
  JsonReply call(Service s, std::string_view op, const protocol::MapBuilder& fields = {});
  // The same, the reply frame itself (MessagePack) or the failure's JSON.
  runner::Outcome<std::string> call_raw(Service s, std::string_view op,
                                        const protocol::MapBuilder& fields = {});
  // A monitor control request.
  JsonReply monitor(const protocol::ControlRequest& req);
  runner::Outcome<std::string> monitor_raw(const protocol::ControlRequest& req);

  // The failure reply for `e` from service `s`.
  static JsonReply failure(Service s, const runner::ApiError& e);

 private:
  struct Client;
  Client& client(Service s);

  zmq::context_t ctx_{1};
  std::unique_ptr<Client> clients_[3];
};

}  // namespace rmon::console
