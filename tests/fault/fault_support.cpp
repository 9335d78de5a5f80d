#include "fault_support.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <msgpack.hpp>
#include <sstream>

#include "../support/http_get.hpp"
#include "../support/wait.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::fault {

using testing::ApiClient;
using testing::ChildProcess;
using testing::wait_until;

std::size_t scale_runners(std::size_t fallback) {
  const char* v = std::getenv("RMON_FAULT_RUNNERS");
  if (v == nullptr) return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return (end != v && *end == '\0' && n > 0) ? static_cast<std::size_t>(n) : fallback;
}

const char* name(Svc s) {
  switch (s) {
    case Svc::kMonitor:
      return "runner-monitor";
    case Svc::kTaskQueue:
      return "task-queue";
    case Svc::kPoolManager:
      return "pool-manager";
    case Svc::kMonitorB:
      return "runner-monitor-b";
  }
  return "?";
}

namespace {

const char* binary(Svc s) {
  switch (s) {
    case Svc::kMonitor:
    case Svc::kMonitorB:
      return RMON_MONITOR_BIN;
    case Svc::kTaskQueue:
      return RMON_TASK_QUEUE_BIN;
    case Svc::kPoolManager:
      return RMON_POOL_MANAGER_BIN;
  }
  return "";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

FaultStack::FaultStack(StackOptions opts) : opts_(std::move(opts)) {}

FaultStack::~FaultStack() {
  for (auto& c : children_) {
    if (c && c->running()) c->signal(SIGCONT);  // a stopped process cannot take SIGTERM
    if (c && c->running()) c->signal(SIGTERM);
  }
  for (auto& c : children_) {
    if (c && c->running() && !c->wait(15s)) c->signal(SIGKILL);
  }
  children_ = {};  // reaps whatever is left
}

std::string FaultStack::group_endpoint(Svc consumer) const {
  return ep(consumer == Svc::kTaskQueue ? "tq-events" : "pm-events");
}

std::string FaultStack::consumer_events_endpoint(Svc consumer) const {
  if (!opts_.relay_events) return group_endpoint(consumer);
  return ep(consumer == Svc::kTaskQueue ? "tq-relay" : "pm-relay");
}

std::string FaultStack::api(Svc s) const {
  switch (s) {
    case Svc::kMonitor:
      return ep("control");
    case Svc::kTaskQueue:
      return ep("task-queue");
    case Svc::kPoolManager:
      return ep("pool-manager");
    case Svc::kMonitorB:
      return ep("control-b");
  }
  return {};
}

std::string FaultStack::log_path(Svc s) const { return dir_.str() + "/" + name(s) + ".log"; }

std::string FaultStack::log_tail(Svc s, std::size_t bytes) const {
  const std::string all = read_file(log_path(s));
  return all.size() <= bytes ? all : all.substr(all.size() - bytes);
}

std::vector<std::string> FaultStack::args(Svc s) const {
  std::vector<std::string> a;
  if (s == Svc::kMonitor || s == Svc::kMonitorB) {
    const bool b = s == Svc::kMonitorB;
    a = {"--heartbeat-endpoint",
         monitor_ep(s, "hb"),
         "--group",
         "task-queue=" + monitor_ep(s, "tq-events") + ",pool-manager=" + monitor_ep(s, "pm-events"),
         "--ack-endpoint",
         monitor_ep(s, "acks"),
         "--control-endpoint",
         api(s),
         "--metrics-address",
         "127.0.0.1:0",
         "--redelivery-interval-ms",
         std::to_string(opts_.redelivery_interval_ms),
         "--data-dir",
         b ? data_dir() + "-b" : data_dir(),
         "--instance",
         b ? "fault-b" : "fault-a"};
  } else {
    std::string events = consumer_events_endpoint(s), acks = ack_endpoint(),
                control = api(Svc::kMonitor);
    if (opts_.monitor_pair) {
      events += "," + monitor_ep(Svc::kMonitorB, s == Svc::kTaskQueue ? "tq-events" : "pm-events");
      acks += "," + monitor_ep(Svc::kMonitorB, "acks");
      control += "," + api(Svc::kMonitorB);
    }
    a = {"--data-dir",
         data_dir(),
         "--sync",
         opts_.sync,
         "--api-endpoint",
         api(s),
         "--events-endpoint",
         events,
         "--ack-endpoint",
         acks,
         "--monitor-endpoint",
         control,
         "--metrics-address",
         "127.0.0.1:0",
         "--first-heartbeat-grace-ms",
         std::to_string(opts_.first_heartbeat_grace_ms)};
    if (s == Svc::kTaskQueue) {
      // Requeued tasks are leasable again at once.
      a.insert(a.end(), {"--backoff-base-ms", "1", "--backoff-cap-ms", "1"});
    } else {
      a.insert(a.end(), {"--pool", opts_.pools});
    }
  }
  const auto& extra = opts_.extra_args[static_cast<int>(s)];
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

void FaultStack::start_all() {
  std::filesystem::create_directories(data_dir());
  for (Svc s : kServices) start(s);
  if (opts_.monitor_pair) start(Svc::kMonitorB);
}

void FaultStack::start(Svc s) {
  const int i = static_cast<int>(s);
  ASSERT_FALSE(running(s)) << name(s) << " is already running";
  std::filesystem::create_directories(data_dir());
  std::filesystem::create_directories(data_dir() + "-b");
  children_[i] = std::make_unique<ChildProcess>(binary(s), args(s), log_path(s));
  ++starts_[i];
  ports_[i] = 0;
  bool up = false;
  const bool settled = wait_until(
      [&] {
        if (children_[i]->wait(0ms)) return true;  // exited
        up = ping(s, 500ms);
        return up;
      },
      30s);
  ASSERT_TRUE(settled && up) << name(s) << " did not come up (start " << starts_[i] << "); log:\n"
                             << log_tail(s);
}

void FaultStack::kill9(Svc s) {
  auto& c = children_[static_cast<int>(s)];
  ASSERT_TRUE(c && c->running()) << name(s) << " is not running";
  c->signal(SIGKILL);
  EXPECT_EQ(c->wait(10s), 128 + SIGKILL) << name(s);
}

std::optional<int> FaultStack::stop(Svc s, Ms timeout) {
  auto& c = children_[static_cast<int>(s)];
  if (!c) return std::nullopt;
  c->signal(SIGCONT);
  c->signal(SIGTERM);
  return c->wait(timeout);
}

void FaultStack::signal(Svc s, int sig) {
  auto& c = children_[static_cast<int>(s)];
  if (c) c->signal(sig);
}

bool FaultStack::running(Svc s) const {
  const auto& c = children_[static_cast<int>(s)];
  return c && c->running();
}

bool FaultStack::ping(Svc s, Ms timeout) {
  ApiClient c(ctx_, api(s), static_cast<int>(timeout.count()));
  return reply_ok(c.call("ping"));
}

int FaultStack::metrics_port(Svc s) {
  const int i = static_cast<int>(s);
  if (ports_[i] != 0) return ports_[i];
  // The start line of the current instance: the starts_[i]-th one.
  const std::string marker = std::string(name(s)) + " started";
  std::string log;
  std::size_t at = std::string::npos;
  (void)wait_until(
      [&] {
        log = read_file(log_path(s));
        at = std::string::npos;
        std::size_t from = 0;
        for (int n = 0; n < starts_[i]; ++n) {
          at = log.find(marker, from);
          if (at == std::string::npos) return false;
          from = at + 1;
        }
        return true;
      },
      10s);
  if (at == std::string::npos) return 0;
  const auto p = log.find("metrics_port=", at);
  if (p == std::string::npos) return 0;
  ports_[i] = std::atoi(log.c_str() + p + 13);
  return ports_[i];
}

std::string FaultStack::metrics(Svc s) {
  const int port = metrics_port(s);
  return port > 0 ? rmon::testing::http_get(port, "/metrics") : std::string();
}

std::unique_ptr<ApiClient> client(FaultStack& stack, Svc s, int timeout_ms) {
  return std::make_unique<ApiClient>(stack.ctx(), stack.api(s), timeout_ms);
}

std::string request(const std::string& op, const protocol::MapBuilder& fields) {
  protocol::MapBuilder m;
  m.u64("v", 1).str("op", op).extend(fields);
  return m.finish();
}

std::vector<std::string> pipeline(ApiClient& c, const std::vector<std::string>& requests,
                                  std::size_t window) {
  std::vector<std::string> replies;
  replies.reserve(requests.size());
  std::size_t sent = 0;
  while (replies.size() < requests.size()) {
    while (sent < requests.size() && sent - replies.size() < window) {
      if (!send_frames(c.socket(), {requests[sent]}, zmq::send_flags::none)) break;
      ++sent;
    }
    zmq::message_t m;
    if (!c.socket().recv(m)) break;  // timed out: the rest are missing
    replies.push_back(m.to_string());
  }
  replies.resize(requests.size());
  return replies;
}

std::map<std::string, uint64_t> counters(const std::string& reply) {
  std::map<std::string, uint64_t> out;
  try {
    const msgpack::object_handle h = msgpack::unpack(reply.data(), reply.size());
    const msgpack::object& o = h.get();
    if (o.type != msgpack::type::MAP) return out;
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const msgpack::object_kv& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) continue;
      if (kv.val.type != msgpack::type::POSITIVE_INTEGER) continue;
      out[std::string(kv.key.via.str.ptr, kv.key.via.str.size)] = kv.val.via.u64;
    }
  } catch (const std::exception&) {
    out.clear();
  }
  return out;
}

std::map<std::string, uint64_t> stats(ApiClient& c) { return counters(c.call("stats")); }

bool reply_ok(const std::string& reply, std::string* error) {
  auto m = protocol::MapReader::parse(reply, protocol::kMaxReplyFrame);
  bool ok = false;
  if (!m || !m->boolean("ok", ok).ok()) {
    if (error) *error = reply.empty() ? "no reply" : "unreadable reply";
    return false;
  }
  if (!ok && error) {
    std::string e;
    (void)m->str("error", e);
    *error = e;
  }
  return ok;
}

double metric(const std::string& text, const std::string& name, const std::string& labels) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    const auto close = next == '{' ? line.find('}') : name.size();
    if (close == std::string::npos) continue;
    if (!labels.empty() && line.substr(0, close).find(labels) == std::string::npos) continue;
    sum += std::strtod(line.c_str() + close + 1, nullptr);
  }
  return sum;
}

void report(const std::string& fault, const std::vector<Count>& staged,
            const std::vector<Count>& checked) {
  std::ostringstream o;
  o << "[fault] " << fault << "\n  staged: ";
  for (const Count& c : staged) o << " " << c.name << "=" << c.value;
  o << "\n  checked:";
  for (const Count& c : checked) o << " " << c.name << "=" << c.value;
  o << "\n";
  std::fputs(o.str().c_str(), stdout);
  std::fflush(stdout);
  if (const char* path = std::getenv("RMON_FAULT_REPORT"); path != nullptr && *path != '\0') {
    std::ofstream(path, std::ios::app) << o.str();
  }
}

}  // namespace rmon::fault
