#pragma once
// A small HTTP server on CivetWeb (Debian's libcivetweb, the library
// prometheus-cpp's own exposer is built on): a fixed pool of worker threads
// calls one handler per request. Every service serves /metrics, /healthz and
// /readyz with it (service/metrics_endpoint.hpp), and the console its pages
// and API. Query parameters are decoded; request bodies are not read (the
// console's actions take their arguments in the query). Thread-safe: the
// handler is called from several threads.

#include <functional>
#include <map>
#include <string>

struct mg_context;
struct mg_connection;

namespace rmon {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // "/api/tasks"
  std::map<std::string, std::string> query;
  std::string host;             // the Host header
  std::string origin;           // the Origin header, "" when absent
  std::string sec_fetch_site;   // Sec-Fetch-Site ("same-origin", "cross-site", ...), "" when absent
  bool console_header = false;  // X-Rmon-Console present (the page's own requests)

  // The query parameter, or "" when absent.
  std::string param(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  explicit HttpServer(Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on "host:port" (port 0: any free one); returns the port. Throws
  // std::runtime_error naming the address and `setting` (the flag that set
  // it, for the message) when it cannot.
  int start(const std::string& listen, int threads = 4, const std::string& setting = "--listen");
  void stop();

 private:
  static int on_request(::mg_connection* conn, void* self);

  Handler handler_;
  ::mg_context* ctx_ = nullptr;
};

}  // namespace rmon
