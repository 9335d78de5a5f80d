#include "console_service.hpp"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

#include "rmon/protocol/msgmap.hpp"
#include "web_assets.hpp"

namespace rmon::console {

namespace {

constexpr uint64_t kDefaultPage = 100;
constexpr uint64_t kMaxPage = 1000;

HttpResponse json(int status, std::string body) {
  return {status, "application/json", std::move(body)};
}
HttpResponse json(const JsonReply& r) { return json(r.status, r.body); }

// A refusal of the console's own, in plain words.
HttpResponse refuse(int status, const std::string& error, const std::string& message) {
  return json(status, protocol::to_json(protocol::MapBuilder()
                                            .boolean("ok", false)
                                            .str("error", error)
                                            .str("message", message)
                                            .finish()));
}

const char* content_type(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

// ?limit= as a page size: default 100, 1..1000; nullopt when malformed.
std::optional<uint64_t> page_size(const HttpRequest& req) {
  const std::string s = req.param("limit");
  if (s.empty()) return kDefaultPage;
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n == 0 || n > kMaxPage) {
    return std::nullopt;
  }
  return n;
}

std::optional<std::string> opt_param(const HttpRequest& req, const std::string& name) {
  std::string v = req.param(name);
  if (v.empty()) return std::nullopt;
  return v;
}

// A counter from a `stats` reply, or -1.
int64_t counter(const runner::Outcome<std::string>& reply, std::string_view key) {
  if (!reply) return -1;
  auto m = protocol::MapReader::parse(reply.value(), protocol::kMaxReplyFrame);
  uint64_t v = 0;
  if (!m || !m.value().u64(key, v)) return -1;
  return static_cast<int64_t>(v);
}

// The Host header's name: "[::1]:8080" -> "[::1]", "a.b:80" -> "a.b"; empty
// when its port is not all digits.
std::string_view host_name(std::string_view host) {
  std::string_view name = host;
  std::string_view port;
  if (host.starts_with('[')) {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return {};
    name = host.substr(0, close + 1);
    port = host.substr(close + 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon);
  }
  if (!port.empty()) {
    if (port.size() < 2 || port[0] != ':') return {};
    for (const char c : port.substr(1)) {
      if (c < '0' || c > '9') return {};
    }
  }
  return name;
}

// localhost, [::1] or a dotted IPv4 address in 127/8 (not "127.evil.com").
bool loopback_name(std::string_view name) {
  if (name == "localhost" || name == "[::1]") return true;
  const std::string n(name);
  in_addr v4{};
  return inet_pton(AF_INET, n.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

// A stable idempotency key for "submit the work of dead task T again": a
// second retry of T (another operator, a repeated click) gets the same new
// task. Within the contract's 128 bytes: a long id is cut and hashed (FNV-1a).
std::string retry_key(const std::string& task_id) {
  constexpr std::string_view kPrefix = "console-retry:";
  if (kPrefix.size() + task_id.size() <= 128) return std::string(kPrefix) + task_id;
  uint64_t h = 14695981039346656037ULL;
  for (const unsigned char c : task_id) h = (h ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string(kPrefix) + task_id.substr(0, 96) + "#" + hex;
}

}  // namespace

ConsoleService::ConsoleService(ConsoleConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock) {
  if (std::string err = config_.validate(); !err.empty()) throw std::invalid_argument(err);
}

ConsoleService::~ConsoleService() { stop(); }

void ConsoleService::start() {
  gateway_ = std::make_unique<Gateway>(config_);
  history_ = std::make_unique<History>(config_.history_samples(), config_.history_interval_ms,
                                       [this] { return sample(); });
  history_->start();
  http_ = std::make_unique<HttpServer>([this](const HttpRequest& r) { return handle(r); });
  port_ = http_->start(config_.listen);
  spdlog::info(
      "rmon-console started on http://{}:{}/ (monitor {}, task-queue {}, pool-manager {}, "
      "security {}) port={}",
      config_.listen.substr(0, config_.listen.rfind(':')), port_, config_.monitor_endpoint,
      config_.task_queue_endpoint, config_.pool_manager_endpoint, config_.security.mode, port_);
}

void ConsoleService::stop() {
  if (http_) http_->stop();
  if (history_) history_->stop();
  http_.reset();
  history_.reset();
  gateway_.reset();
}

bool ConsoleService::host_allowed(const std::string& host) const {
  const std::string_view name = host_name(host);
  if (name.empty()) return false;
  if (loopback_name(name)) return true;
  for (const std::string& allowed : config_.allowed_hosts) {
    if (name == allowed) return true;
  }
  return false;
}

// An action from another site: its Origin names another host, or the
// browser says the request is not same-origin. (Without either header it is
// not a browser's cross-site request; the X-Rmon-Console header is needed
// as well.)
bool ConsoleService::cross_site(const HttpRequest& req) const {
  if (!req.sec_fetch_site.empty() && req.sec_fetch_site != "same-origin" &&
      req.sec_fetch_site != "none") {
    return true;
  }
  if (req.origin.empty()) return false;
  return req.origin != "http://" + req.host;
}

HttpResponse ConsoleService::handle(const HttpRequest& req) {
  if (!host_allowed(req.host)) {
    return refuse(
        421, "bad_host",
        "this console answers only requests addressed to a loopback name or an --allowed-host "
        "(Host: " +
            req.host + ")");
  }
  if (req.path.starts_with("/api/")) return api(req);
  if (req.method != "GET" && req.method != "HEAD") {
    return refuse(405, "method_not_allowed", "pages are read with GET");
  }
  const std::string_view name =
      req.path == "/" ? std::string_view("index.html") : std::string_view(req.path).substr(1);
  for (const WebAsset& a : web_assets()) {
    if (a.name == name) return {200, content_type(name), std::string(a.body)};
  }
  return refuse(404, "not_found", "no such page: " + req.path);
}

HttpResponse ConsoleService::api(const HttpRequest& req) {
  const std::string& p = req.path;
  if (req.method == "POST") {
    if (!req.console_header || cross_site(req)) {
      return refuse(403, "forbidden",
                    "actions come only from the console's own page (its X-Rmon-Console "
                    "header, same origin)");
    }
    const std::string id = req.param("id");
    if (p == "/api/brake/release") {
      protocol::ControlRequest r;
      r.op = protocol::Op::kReleaseBrake;
      return json(gateway_->monitor(r));
    }
    if (id.empty()) return refuse(400, "bad_request", "which task? (?id= is missing)");
    if (p == "/api/task/cancel") {
      return json(
          gateway_->call(Service::kTaskQueue, "cancel", protocol::MapBuilder().str("task_id", id)));
    }
    if (p == "/api/task/retry") return retry(id);
    return refuse(404, "not_found", "no such action: " + p);
  }
  if (req.method != "GET") return refuse(405, "method_not_allowed", "use GET or POST");
  if (p == "/api/overview") return overview();
  if (p == "/api/runners") return runners(req);
  if (p == "/api/tasks") return tasks(req);
  if (p == "/api/pools") return json(gateway_->call(Service::kPoolManager, "status"));
  if (p == "/api/history") return json(200, history_->to_json());
  if (p == "/api/runner" || p == "/api/task") {
    const std::string id = req.param("id");
    if (id.empty()) return refuse(400, "bad_request", "which one? (?id= is missing)");
    if (p == "/api/task") {
      return json(
          gateway_->call(Service::kTaskQueue, "get", protocol::MapBuilder().str("task_id", id)));
    }
    protocol::ControlRequest r;
    r.op = protocol::Op::kGet;
    r.runner_id = id;
    return json(gateway_->monitor(r));
  }
  return refuse(404, "not_found", "no such API: " + p);
}

HttpResponse ConsoleService::overview() {
  const auto part = [](const JsonReply& r) { return r.body; };
  protocol::ControlRequest stats;
  stats.op = protocol::Op::kStats;
  std::string body = "{\"ok\":true,\"now_ms\":" + std::to_string(clock_.wall_ms());
  body += ",\"monitor\":" + part(gateway_->monitor(stats));
  body += ",\"task_queue\":" + part(gateway_->call(Service::kTaskQueue, "stats"));
  body += ",\"pools\":" + part(gateway_->call(Service::kPoolManager, "status"));
  body += ",\"history\":" + history_->to_json() + "}";
  return json(200, body);
}

HttpResponse ConsoleService::runners(const HttpRequest& req) {
  protocol::ControlRequest r;
  r.op = protocol::Op::kList;
  const auto limit = page_size(req);
  if (!limit) return refuse(400, "bad_request", "limit must be 1 to 1000");
  r.limit = *limit;
  if (const std::string s = req.param("state"); !s.empty()) {
    r.state = protocol::parse_runner_state(s);
    if (!r.state) {
      return refuse(400, "bad_request",
                    "unknown runner state '" + s + "' (running, suspect, completed, failed)");
    }
  }
  r.pool = opt_param(req, "pool");
  r.after = opt_param(req, "after");
  return json(gateway_->monitor(r));
}

HttpResponse ConsoleService::tasks(const HttpRequest& req) {
  const auto limit = page_size(req);
  if (!limit) return refuse(400, "bad_request", "limit must be 1 to 1000");
  protocol::MapBuilder f;
  f.u64("limit", *limit)
      .opt_str("state", opt_param(req, "state"))
      .opt_str("pool", opt_param(req, "pool"))
      .opt_str("after", opt_param(req, "after"));
  return json(gateway_->call(Service::kTaskQueue, "list", f));
}

// A dead task is not revived (its attempts are used up and its history is
// its own): the same work is submitted again as a new task.
HttpResponse ConsoleService::retry(const std::string& task_id) {
  auto got = gateway_->call_raw(Service::kTaskQueue, "get",
                                protocol::MapBuilder().str("task_id", task_id));
  if (!got) return json(Gateway::failure(Service::kTaskQueue, got.error()));
  auto reply = protocol::MapReader::parse(got.value(), protocol::kMaxReplyFrame);
  std::optional<protocol::MapReader> task;
  std::string state;
  std::optional<std::string> payload;
  std::optional<std::string> pool;
  std::optional<int64_t> priority;
  std::optional<uint64_t> max_attempts;
  if (!reply || !reply.value().opt_map("task", task) || !task || !task->str("state", state) ||
      !task->opt_raw("payload", payload, protocol::kMaxReplyFrame) ||
      !task->opt_str("pool", pool) || !task->opt_i64("priority", priority) ||
      !task->opt_u64("max_attempts", max_attempts) || !payload) {
    return refuse(502, "bad_reply", "the task-queue's answer about " + task_id + " was unreadable");
  }
  if (state != "dead") {
    return refuse(409, "conflict", "only a dead task can be retried; " + task_id + " is " + state);
  }
  protocol::MapBuilder f;
  f.raw("payload", *payload)
      .opt_str("pool", pool)
      .opt_i64("priority", priority)
      .opt_u64("max_attempts", max_attempts)
      .str("idempotency_key", retry_key(task_id));
  auto sub = gateway_->call_raw(Service::kTaskQueue, "submit", f);
  if (!sub) return json(Gateway::failure(Service::kTaskQueue, sub.error()));
  auto m = protocol::MapReader::parse(sub.value(), protocol::kMaxReplyFrame);
  std::string new_id;
  bool created = true;
  if (!m || !m.value().str("task_id", new_id) || !m.value().boolean("created", created)) {
    return refuse(502, "bad_reply", "the task-queue's answer to the new submit was unreadable");
  }
  if (created) spdlog::info("console: dead task {} submitted again as {}", task_id, new_id);
  return json(200, protocol::to_json(protocol::MapBuilder()
                                         .boolean("ok", true)
                                         .str("task_id", new_id)
                                         .str("retry_of", task_id)
                                         .boolean("created", created)
                                         .finish()));
}

Sample ConsoleService::sample() {
  Sample s;
  s.at_ms = clock_.wall_ms();
  protocol::ControlRequest stats;
  stats.op = protocol::Op::kStats;
  s.timeouts = counter(gateway_->monitor_raw(stats), "timeouts");
  const auto tq = gateway_->call_raw(Service::kTaskQueue, "stats");
  s.reassigned = counter(tq, "reassigned");
  s.completed = counter(tq, "completed");
  s.slots_freed =
      counter(gateway_->call_raw(Service::kPoolManager, "stats"), "released_by_timeout");
  return s;
}

}  // namespace rmon::console
