#include "rmon/http_server.hpp"

#include <civetweb.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace rmon {

namespace {

// "a=1&b=x%20y" -> {a: "1", b: "x y"}; a repeated name keeps its first value.
std::map<std::string, std::string> parse_query(const char* qs) {
  std::map<std::string, std::string> out;
  if (qs == nullptr) return out;
  std::string s(qs);
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t amp = s.find('&', pos);
    const std::string part =
        s.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    const std::size_t eq = part.find('=');
    const std::string key = part.substr(0, eq);
    const std::string raw = eq == std::string::npos ? std::string() : part.substr(eq + 1);
    std::vector<char> buf(raw.size() + 1);
    const int n = mg_url_decode(raw.c_str(), static_cast<int>(raw.size()), buf.data(),
                                static_cast<int>(buf.size()), 1);
    if (!key.empty() && n >= 0)
      out.emplace(key, std::string(buf.data(), static_cast<std::size_t>(n)));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

}  // namespace

std::string HttpRequest::param(const std::string& name) const {
  const auto it = query.find(name);
  return it == query.end() ? std::string() : it->second;
}

HttpServer::HttpServer(Handler handler) : handler_(std::move(handler)) {
  // Once per process.
  static const unsigned initialised = mg_init_library(0);
  (void)initialised;
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start(const std::string& listen, int threads, const std::string& setting) {
  const std::string nthreads = std::to_string(threads);
  // No CORS: CivetWeb would answer every preflight itself with "*" (any
  // site, any method, any header); empty, the preflight reaches the handler,
  // which refuses it.
  const char* options[] = {"listening_ports",
                           listen.c_str(),
                           "num_threads",
                           nthreads.c_str(),
                           "request_timeout_ms",
                           "10000",
                           "enable_keep_alive",
                           "yes",
                           "access_control_allow_origin",
                           "",
                           "access_control_allow_methods",
                           "",
                           "access_control_allow_headers",
                           "",
                           nullptr};
  mg_callbacks callbacks{};
  ctx_ = mg_start(&callbacks, this, options);
  if (ctx_ == nullptr) {
    throw std::runtime_error("cannot listen on " + listen + " (" + setting +
                             "): the address is taken or not this host's");
  }
  mg_set_request_handler(ctx_, "/", &HttpServer::on_request, this);
  mg_server_port ports[4]{};
  const int n = mg_get_server_ports(ctx_, 4, ports);
  return n > 0 ? ports[0].port : 0;
}

void HttpServer::stop() {
  if (ctx_ != nullptr) mg_stop(ctx_);
  ctx_ = nullptr;
}

int HttpServer::on_request(mg_connection* conn, void* self) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest req;
  req.method = info->request_method != nullptr ? info->request_method : "";
  req.path = info->local_uri != nullptr ? info->local_uri : "/";
  req.query = parse_query(info->query_string);
  if (const char* h = mg_get_header(conn, "Host")) req.host = h;
  req.console_header = mg_get_header(conn, "X-Rmon-Console") != nullptr;
  if (const char* h = mg_get_header(conn, "Origin")) req.origin = h;
  if (const char* h = mg_get_header(conn, "Sec-Fetch-Site")) req.sec_fetch_site = h;
  HttpResponse res;
  try {
    res = static_cast<HttpServer*>(self)->handler_(req);
  } catch (const std::exception& e) {
    spdlog::error("http: {} {} failed: {}", req.method, req.path, e.what());
    res = {500, "application/json",
           R"({"ok":false,"error":"internal","message":"this request failed; see the log"})"};
  }
  mg_response_header_start(conn, res.status);
  mg_response_header_add(conn, "Content-Type", res.content_type.c_str(), -1);
  const std::string length = std::to_string(res.body.size());
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  mg_response_header_add(conn, "X-Content-Type-Options", "nosniff", -1);
  mg_response_header_add(conn, "X-Frame-Options", "DENY", -1);
  mg_response_header_add(conn, "Content-Security-Policy",
                         "default-src 'self'; style-src 'self'; img-src 'self' data:; "
                         "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; "
                         "object-src 'none'",
                         -1);
  mg_response_header_send(conn);
  if (std::strcmp(req.method.c_str(), "HEAD") != 0) {
    mg_write(conn, res.body.data(), res.body.size());
  }
  return res.status;
}

}  // namespace rmon
