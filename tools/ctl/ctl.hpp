#pragma once
// rmon-ctl's core: global options, one request/reply client per service,
// error reporting by exit code, and the command groups' registration.

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <array>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "rmon/protocol/messages.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/runner/api_client.hpp"

namespace rmon::ctl {

// Exit codes (documented in --help).
enum Exit : int {
  kOk = 0,
  kServiceError = 1,  // a service answered an error (or an unreadable reply)
  kUsage = 2,         // bad flags, arguments, JSON or files
  kNoAnswer = 3,      // a service did not answer within --timeout-ms
};

// A usage problem found after parsing (bad JSON, unreadable file): exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Service { kMonitor, kTaskQueue, kPoolManager };
inline constexpr std::array<Service, 3> kServices{Service::kMonitor, Service::kTaskQueue,
                                                  Service::kPoolManager};
std::string_view name(Service s);

struct Options {
  std::string monitor = "tcp://127.0.0.1:5559";
  std::string task_queue = "tcp://127.0.0.1:5560";
  std::string pool_manager = "tcp://127.0.0.1:5561";
  int timeout_ms = 3000;
  bool json = false;
  security::ClientSecurity security;
  const std::string& endpoint(Service s) const;
};

// The monitor's reply to a control request: decoded, and its bytes for --json.
struct MonitorReply {
  protocol::ControlReply reply;
  std::string raw;
};

class Ctl {
 public:
  Ctl(std::ostream& out, std::ostream& err) : out(out), err(err) {}

  // Registers the global options and every command on `app`; a command's
  // callback sets `action`.
  void setup(CLI::App& app);

  // A task-queue or pool-manager request {v, op, ...fields}: the reply frame
  // (ok true), or the ApiError (service error, `timeout`, `bad_reply`).
  runner::Outcome<std::string> call(Service s, std::string_view op,
                                    const protocol::MapBuilder& fields = {});
  // A monitor control request; an error reply is an ApiError too.
  runner::Outcome<MonitorReply> monitor(const protocol::ControlRequest& req);

  // Prints a failed call to stderr; returns kNoAnswer for `timeout`, else
  // kServiceError.
  int report(Service s, const runner::ApiError& e);
  // Writes `reply` (any encoded MessagePack) as one line of JSON.
  void print_json(std::string_view msgpack_bytes);
  // A reply holding one map under `key` (`runner`, `task`): with --json the
  // whole reply, else that map's fields as "key  value" lines.
  void print_entity(const std::string& reply, std::string_view key);
  // A reply of counters (`stats`): with --json the whole reply, else its
  // fields as "key  value" lines.
  void print_counters(const std::string& reply);

  // The service's client, connected on first use; a malformed endpoint is a
  // UsageError.
  runner::ApiClient& client(Service s);

  Options opt;
  std::function<int()> action;
  std::ostream& out;
  std::ostream& err;
  zmq::context_t zmq;

 private:
  std::array<std::unique_ptr<runner::ApiClient>, 3> clients_;
};

// Command groups (each in its own file).
void add_runner_commands(CLI::App& app, Ctl& ctl);
void add_task_commands(CLI::App& app, Ctl& ctl);
void add_pool_commands(CLI::App& app, Ctl& ctl);
void add_ping_command(CLI::App& app, Ctl& ctl);

// --- paging, shared by `runners list` and `tasks list` ---

struct ListArgs {
  uint64_t limit = 0;  // 0: the service's default page
  std::string after;
  bool all = false;
  uint64_t max = 100'000;
};
void add_list_options(CLI::App& sub, ListArgs& a, std::string_view what);

// One page of a list reply.
struct Page {
  std::string raw;  // the reply frame
  std::vector<std::vector<std::string>> rows;
  std::string last_id;
  bool more = false;
};
using FetchPage = std::function<runner::Outcome<Page>(const std::string& after, uint64_t limit)>;

struct ListSpec {
  Service service;
  std::string_view items_key;  // "runners", "tasks"
  std::vector<std::string> headers;
  std::vector<bool> right;   // right-aligned columns
  std::string next_command;  // "rmon-ctl tasks list"
};
int run_list(Ctl& ctl, const ListArgs& a, const ListSpec& spec, const FetchPage& fetch);

}  // namespace rmon::ctl
