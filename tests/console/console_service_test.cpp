// rmon-console's server side without a browser: its settings, and the
// requests it refuses by itself (host, cross-site actions, bad filters),
// which never reach a service; and a service that does not answer, told in
// plain words. The pages against the real stack: console.spec.js.
#include <gtest/gtest.h>

#include <string>

#include "../support/http_get.hpp"
#include "console_config.hpp"
#include "console_service.hpp"
#include "rmon/clock.hpp"

namespace rmon::console {
namespace {

ConsoleConfig quiet_config(const std::string& dir) {
  ConsoleConfig c;
  c.listen = "127.0.0.1:0";
  // Nothing listens there: every call to a service times out.
  c.monitor_endpoint = "ipc://" + dir + "/no-monitor";
  c.task_queue_endpoint = "ipc://" + dir + "/no-task-queue";
  c.pool_manager_endpoint = "ipc://" + dir + "/no-pool-manager";
  c.timeout_ms = 50;
  c.history_interval_ms = 60'000;
  return c;
}

HttpRequest get(std::string path, std::map<std::string, std::string> query = {}) {
  HttpRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.query = std::move(query);
  r.host = "127.0.0.1:8080";
  return r;
}

TEST(ConsoleConfig, ListensOnLoopbackUnlessToldOtherwise) {
  ConsoleConfig c;
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.validate(), "");
  c.listen = "0.0.0.0:8080";
  EXPECT_NE(c.validate().find("--insecure-listen"), std::string::npos) << c.validate();
  c.listen = "127.0.0.1:8080,8081";  // CivetWeb: a second listener on every address
  EXPECT_NE(c.validate(), "");
  c.insecure_listen = true;
  EXPECT_EQ(c.validate(), "");
  c.history_interval_ms = 10;
  EXPECT_NE(c.validate().find("--history-interval-ms"), std::string::npos);
  ConsoleConfig d;
  EXPECT_EQ(d.history_samples(), 361u);  // an hour every 10 s, both ends
}

// One console for the suite: CivetWeb's stop waits out its 2 s poll.
class ConsoleServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    service_ = new ConsoleService(quiet_config(::testing::TempDir()), SystemClock::instance());
    service_->start();
  }
  static void TearDownTestSuite() {
    delete service_;
    service_ = nullptr;
  }
  static ConsoleService* service_;
};
ConsoleService* ConsoleServiceTest::service_ = nullptr;

TEST_F(ConsoleServiceTest, ServesItsPagesFromTheBinary) {
  const HttpResponse page = service_->handle(get("/"));
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script src=\"/app.js\""), std::string::npos);
  EXPECT_EQ(service_->handle(get("/app.js")).content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(service_->handle(get("/style.css")).status, 200);
  EXPECT_GT(service_->port(), 0);
  // Over HTTP: the page, and a path that climbs out is no file of ours.
  EXPECT_NE(rmon::testing::http_get(service_->port(), "/").find("rmon console"), std::string::npos);
  const std::string climb = rmon::testing::http_exchange(
      service_->port(), "GET /../../etc/passwd HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(climb.find("root:"), std::string::npos) << climb;
  EXPECT_NE(climb.substr(9, 3), "200") << climb;
}

TEST_F(ConsoleServiceTest, RefusesAForeignHostAndActionsWithoutItsHeader) {
  HttpRequest rebound = get("/api/overview");
  rebound.host = "attacker.example:8080";  // DNS rebinding onto 127.0.0.1
  const HttpResponse r = service_->handle(rebound);
  EXPECT_EQ(r.status, 421);
  EXPECT_NE(r.body.find("loopback"), std::string::npos);
  for (const char* host : {"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "127.0.0.1",
                           "127.1.2.3:80", "localhost"}) {
    HttpRequest ok = get("/");
    ok.host = host;
    EXPECT_EQ(service_->handle(ok).status, 200) << host;
  }
  // Names an attacker can point at 127.0.0.1 (DNS rebinding), and odd ports.
  for (const char* host : {"127.0.0.1.evil.com:80", "127.evil.com", "localhost.evil.com:8080",
                           "127.0.0.1:80x", "127.0.0.1:", "[::1]x:80", "", "evil.com"}) {
    HttpRequest bad = get("/");
    bad.host = host;
    EXPECT_EQ(service_->handle(bad).status, 421) << host;
  }
  HttpRequest cancel = get("/api/task/cancel", {{"id", "t-1"}});
  cancel.method = "POST";  // a form on another site cannot add the header
  const HttpResponse refused = service_->handle(cancel);
  EXPECT_EQ(refused.status, 403);
  EXPECT_NE(refused.body.find("X-Rmon-Console"), std::string::npos);
  HttpRequest no_id = get("/api/task/retry");
  no_id.method = "POST";
  no_id.console_header = true;
  EXPECT_EQ(service_->handle(no_id).status, 400);  // past the checks, refused for its id
  // The header is not enough from another origin.
  HttpRequest foreign = no_id;
  foreign.origin = "http://evil.example";
  EXPECT_EQ(service_->handle(foreign).status, 403);
  HttpRequest fetched = no_id;
  fetched.sec_fetch_site = "cross-site";
  EXPECT_EQ(service_->handle(fetched).status, 403);
  HttpRequest same = no_id;
  same.origin = "http://127.0.0.1:8080";
  same.sec_fetch_site = "same-origin";
  EXPECT_EQ(service_->handle(same).status, 400);
}

// Over HTTP: CivetWeb answers no CORS preflight for us (its default would
// allow any site, method and header); the console refuses it.
TEST_F(ConsoleServiceTest, ACrossSitePreflightIsRefused) {
  const std::string reply = rmon::testing::http_exchange(
      service_->port(),
      "OPTIONS /api/task/cancel?id=t-1 HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n"
      "Origin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n"
      "Access-Control-Request-Headers: x-rmon-console\r\n\r\n");
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(reply.substr(9, 3), "405") << reply;
  EXPECT_EQ(reply.find("Access-Control-Allow"), std::string::npos) << reply;
  const std::string post = rmon::testing::http_exchange(
      service_->port(),
      "POST /api/brake/release HTTP/1.0\r\nHost: 127.0.0.1:8080\r\nOrigin: http://evil.example\r\n"
      "X-Rmon-Console: 1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.substr(9, 3), "403") << post;
}

TEST(ConsoleHosts, AnAllowedHostIsAcceptedWhateverTheListenAddress) {
  ConsoleConfig c = quiet_config(::testing::TempDir());
  c.allowed_hosts = {"console.example.org"};
  ConsoleService service(c, SystemClock::instance());
  HttpRequest r = get("/");
  r.host = "console.example.org:8080";
  EXPECT_EQ(service.handle(r).status, 200);
  r.host = "other.example.org:8080";
  EXPECT_EQ(service.handle(r).status, 421);
}

TEST_F(ConsoleServiceTest, BadFiltersAreRefusedInPlainWords) {
  const HttpResponse state = service_->handle(get("/api/runners", {{"state", "asleep"}}));
  EXPECT_EQ(state.status, 400);
  EXPECT_NE(state.body.find("unknown runner state 'asleep'"), std::string::npos) << state.body;
  for (const char* limit : {"0", "1001", "ten", "5x", "-1"}) {
    const HttpResponse r = service_->handle(get("/api/tasks", {{"limit", limit}}));
    EXPECT_EQ(r.status, 400) << limit;
    EXPECT_NE(r.body.find("limit must be 1 to 1000"), std::string::npos) << r.body;
  }
  EXPECT_EQ(service_->handle(get("/api/nothing")).status, 404);
  EXPECT_EQ(service_->handle(get("/api/task")).status, 400);  // no ?id=
}

TEST_F(ConsoleServiceTest, AServiceThatDoesNotAnswerIsAGatewayTimeoutInPlainWords) {
  const HttpResponse r = service_->handle(get("/api/tasks"));
  EXPECT_EQ(r.status, 504);
  EXPECT_NE(r.body.find("task-queue did not answer in time"), std::string::npos) << r.body;
  // The overview still answers, each part saying what failed.
  const HttpResponse o = service_->handle(get("/api/overview"));
  EXPECT_EQ(o.status, 200);
  EXPECT_NE(o.body.find("runner-monitor did not answer in time"), std::string::npos) << o.body;
  EXPECT_NE(o.body.find("pool-manager did not answer in time"), std::string::npos);
}

}  // namespace
}  // namespace rmon::console
