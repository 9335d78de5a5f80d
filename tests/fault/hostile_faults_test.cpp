// Hostile input under load (issue #9's fault suite): the real stack as
// processes, a fleet heartbeating, a client submitting, leasing, completing
// tasks and taking and freeing slots, and a few runners timing out. Meanwhile
// malformed messages go to every socket of every service: the monitor's
// heartbeat SUB (through a PUB), ack PULL (through a PUSH) and control
// ROUTER (DEALER and REQ), the task-queue's and pool-manager's API ROUTERs,
// and their event PULLs (they connect to the monitor; an EventRelay between
// the two forwards the real events and injects the garbage). Each socket's
// rejection counter must rise by exactly what was sent to it (less what
// libzmq drops unread), every service must stay up, and the final state must
// be what the legitimate load alone produces.

#include <gtest/gtest.h>

#include "../support/wait.hpp"
#include "fault_support.hpp"
#include "hostile_garbage.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::fault {
namespace {

using protocol::MapBuilder;
using protocol::MapReader;
using testing::ApiClient;
using testing::wait_until;

constexpr char kPool[] = "fault";
constexpr std::size_t kVictims = 20;

// The first `max` bytes of `s` in hex, for failure messages.
std::string hex(const std::string& s, std::size_t max) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    out += d[(static_cast<unsigned char>(s[i]) >> 4) & 0xf];
    out += d[static_cast<unsigned char>(s[i]) & 0xf];
  }
  if (s.size() > max) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

// A client doing ordinary work until told to stop, about 250 rounds a
// second: submit; every second
// round lease it and take a slot; every fourth round complete the task and
// free the slot. Counts what it did (read them after stop()).
class LegitLoad {
 public:
  explicit LegitLoad(FaultStack& stack) : stack_(stack) {
    thread_ = std::thread([this] { run(); });
  }
  ~LegitLoad() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t rounds() const { return rounds_.load(); }
  uint64_t submitted = 0, leased = 0, completed = 0, acquired = 0, released = 0, errors = 0;
  std::string first_error;

 private:
  bool ok(const std::string& reply, const char* what) {
    std::string e;
    if (reply_ok(reply, &e)) return true;
    if (errors++ == 0) first_error = std::string(what) + ": " + e;
    return false;
  }
  void run() {
    auto tq = client(stack_, Svc::kTaskQueue);
    auto pm = client(stack_, Svc::kPoolManager);
    const auto begin = std::chrono::steady_clock::now();
    for (uint64_t k = 0; !stop_.load(); ++k, rounds_.fetch_add(1)) {
      // Pacing, not synchronisation: about 250 rounds a second.
      std::this_thread::sleep_until(begin + k * 4ms);
      if (!ok(tq->call("submit", MapBuilder().raw("payload", MapBuilder().u64("k", k).finish())),
              "submit")) {
        continue;
      }
      ++submitted;
      if (k % 2 != 0) continue;
      const std::string runner = "client-" + std::to_string(k);
      const std::string reply = tq->call("lease", MapBuilder().str("runner_id", runner));
      if (!ok(reply, "lease")) continue;
      auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
      std::optional<MapReader> task;
      std::string id;
      uint64_t attempt = 0;
      if (!m->opt_map("task", task).ok() || !task || !task->str("task_id", id).ok() ||
          !task->u64("attempt", attempt).ok()) {
        if (errors++ == 0) first_error = "lease: no task";
        continue;
      }
      ++leased;
      if (!ok(pm->call("acquire", MapBuilder()
                                      .str("pool", kPool)
                                      .str("runner_id", runner)
                                      .str("task_id", id)
                                      .u64("attempt", attempt)),
              "acquire")) {
        continue;
      }
      ++acquired;
      if (k % 4 != 0) continue;
      if (ok(tq->call("complete", MapBuilder().str("task_id", id).u64("attempt", attempt)),
             "complete")) {
        ++completed;
      }
      if (ok(pm->call("release", MapBuilder().str("runner_id", runner)), "release")) ++released;
    }
  }

  FaultStack& stack_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> rounds_{0};
  std::thread thread_;
};

class HostileFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    n_ = scale_runners();
    StackOptions o;
    o.pools = std::string(kPool) + "=local-process:100000";
    o.relay_events = true;
    stack_ = std::make_unique<FaultStack>(o);
    for (Svc s : {Svc::kTaskQueue, Svc::kPoolManager}) {
      relay_[static_cast<int>(s)] = std::make_unique<EventRelay>(
          stack_->ctx(), stack_->group_endpoint(s), stack_->consumer_events_endpoint(s));
    }
    ASSERT_NO_FATAL_FAILURE(stack_->start_all());
    mon_ = client(*stack_, Svc::kMonitor);
    tq_ = client(*stack_, Svc::kTaskQueue);
    pm_ = client(*stack_, Svc::kPoolManager);

    tools::FleetOptions f;
    f.runners = n_;
    f.prefix = "fleet-";
    f.pool = kPool;
    f.timeout_ms = 30'000;
    f.interval_ms = 1000;
    fleet_ = std::make_unique<FleetPublisher>(stack_->ctx(), stack_->heartbeat_endpoint(), f);
    // A few runners with a task and a slot that time out during the garbage:
    // their events cross the relays with it.
    f.runners = kVictims;
    f.prefix = "victim-";
    f.timeout_ms = 1500;
    f.interval_ms = 250;
    victims_ = std::make_unique<FleetPublisher>(stack_->ctx(), stack_->heartbeat_endpoint(), f);
    for (std::size_t i = 0; i < kVictims; ++i) {
      ASSERT_TRUE(reply_ok(tq_->call(
          "submit",
          MapBuilder().raw("payload", MapBuilder().u64("v", i).finish()).str("pool", kPool))));
      const std::string reply = tq_->call(
          "lease", MapBuilder().str("runner_id", victims_->runner_id(i)).str("pool", kPool));
      auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
      std::optional<MapReader> task;
      std::string id;
      ASSERT_TRUE(m && m->opt_map("task", task).ok() && task && task->str("task_id", id).ok());
      victims_->assign(i, id, 1);
      ASSERT_TRUE(reply_ok(pm_->call("acquire", MapBuilder()
                                                    .str("pool", kPool)
                                                    .str("runner_id", victims_->runner_id(i))
                                                    .str("task_id", id)
                                                    .u64("attempt", 1))));
    }
    fleet_->start();
    victims_->start();
    ASSERT_TRUE(wait_until([&] { return stats(*mon_)["running"] == n_ + kVictims; }, 60s))
        << "the monitor did not see every runner";
  }

  // Sends `g` in order through `send` (false: not sent), waiting every
  // `batch` messages until `rejected()` has caught up with what was counted.
  // Returns {sent, counted}.
  template <class Send, class Rejected>
  std::pair<uint64_t, uint64_t> feed(const std::vector<Garbage>& g, Send send, Rejected rejected,
                                     std::size_t batch = 100) {
    const uint64_t base = rejected();
    uint64_t sent = 0, counted = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (!g[i].counted) continue;  // droppers go last, after the check
      EXPECT_TRUE(send(g[i])) << g[i].what << " #" << i;
      ++sent;
      ++counted;
      if (counted % batch == 0) {
        EXPECT_TRUE(wait_until([&] { return rejected() - base >= counted; }, 20s))
            << "rejections " << rejected() - base << " of " << counted << " sent";
      }
    }
    EXPECT_TRUE(wait_until([&] { return rejected() - base == counted; }, 20s))
        << "rejections " << rejected() - base << " of " << counted << " sent";
    for (const Garbage& m : g) {
      if (m.counted) continue;
      EXPECT_TRUE(send(m)) << m.what;
      ++sent;
    }
    return {sent, rejected() - base};
  }

  // One request on `s` with a random envelope (none, an empty delimiter, or
  // an extra identity frame); the reply must be {ok: false}.
  bool send_request(zmq::socket_t& s, const Garbage& g, uint64_t i, uint64_t& refused) {
    const std::string_view body = g.frames[0];
    // Three vectors, not inserts: GCC 12 warns falsely (-Wstringop-overflow)
    // on a vector<string_view> insert of an initializer list.
    const std::vector<std::string_view> frames =
        i % 3 == 0 ? std::vector<std::string_view>{body}
                   : (i % 3 == 1 ? std::vector<std::string_view>{"", body}
                                 : std::vector<std::string_view>{"junk-envelope", "", body});
    if (!send_frames(s, frames, zmq::send_flags::none)) return false;
    if (!g.counted) return true;  // libzmq drops the connection: no reply
    std::vector<zmq::message_t> reply;
    if (!recv_frames(s, reply) || reply.empty()) {
      ADD_FAILURE() << "no reply to " << g.what << " #" << i;
      return false;
    }
    std::string error;
    if (reply_ok(reply.back().to_string(), &error)) {
      ADD_FAILURE() << g.what << " #" << i << " was accepted: " << hex(g.frames[0], 120)
                    << " reply: " << protocol::to_json(reply.back().to_string());
    } else if (error == "bad_request" || error == "unknown_op") {
      ++refused;
    } else {
      ADD_FAILURE() << g.what << " #" << i << " answered " << error;
    }
    return true;
  }

  // Garbage requests to a service's ROUTER from a DEALER (and every tenth
  // from a REQ); then the connection dropper from a DEALER of its own.
  template <class Rejected>
  void requests(Svc s, const std::vector<Garbage>& g, Rejected rejected, const std::string& label) {
    SocketOptions o;
    o.recv_timeout_ms = 5000;
    o.send_timeout_ms = 5000;
    zmq::socket_t dealer = make_socket(stack_->ctx(), zmq::socket_type::dealer, o);
    dealer.connect(stack_->api(s));
    zmq::socket_t req = make_socket(stack_->ctx(), zmq::socket_type::req, o);
    req.connect(stack_->api(s));
    zmq::socket_t dropper = make_socket(stack_->ctx(), zmq::socket_type::dealer, o);
    dropper.connect(stack_->api(s));
    uint64_t i = 0, refused = 0, via_req = 0;
    auto [sent, counted] = feed(
        g,
        [&](const Garbage& m) {
          ++i;
          if (!m.counted) return send_request(dropper, m, 0, refused);
          if (i % 10 == 0) {
            ++via_req;
            return send_request(req, m, 0, refused);  // REQ adds the delimiter itself
          }
          return send_request(dealer, m, i, refused);
        },
        rejected);
    EXPECT_TRUE(stack_->ping(s)) << name(s) << " stopped answering";
    EXPECT_EQ(refused, counted);
    report("hostile input: " + label,
           {{"sent", sent}, {"via_req", via_req}, {"over_maxmsgsize", sent - counted}},
           {{"answered_bad_request", refused},
            {"rejection_counter_rise", counted},
            {"still_answers_ping", stack_->ping(s) ? 1u : 0u}});
  }

  uint64_t mon_metric(const std::string& name, const std::string& labels = "") {
    return static_cast<uint64_t>(metric(stack_->metrics(Svc::kMonitor), name, labels));
  }

  std::size_t n_ = 0;
  std::unique_ptr<FaultStack> stack_;
  std::array<std::unique_ptr<EventRelay>, 3> relay_;
  std::unique_ptr<ApiClient> mon_, tq_, pm_;
  std::unique_ptr<FleetPublisher> fleet_, victims_;
};

TEST_F(HostileFaults, MalformedFramesOnEverySocketUnderLoadChangeNothing) {
  LegitLoad load(*stack_);
  ASSERT_TRUE(wait_until([&] { return load.rounds() > 0; }));
  const uint64_t hb0 = stats(*mon_)["heartbeats"];

  // Monitor heartbeat SUB: an XPUB sees the monitor's subscription arrive,
  // so nothing is dropped for want of a subscriber.
  {
    SocketOptions o;
    o.send_hwm = 100'000;
    o.recv_timeout_ms = 10'000;
    zmq::socket_t pub = make_socket(stack_->ctx(), zmq::socket_type::xpub, o);
    pub.connect(stack_->heartbeat_endpoint());
    zmq::message_t sub;
    ASSERT_TRUE(pub.recv(sub)) << "no subscription from the monitor";
    const auto g = heartbeat_garbage(1);
    auto [sent, counted] = feed(
        g,
        [&](const Garbage& m) {
          std::vector<std::string_view> f(m.frames.begin(), m.frames.end());
          return send_frames(pub, f, zmq::send_flags::none);
        },
        [&] { return stats(*mon_)["rejected"]; });
    // The dropped connection was the garbage's own: the fleet's go on.
    const uint64_t hb1 = stats(*mon_)["heartbeats"];
    EXPECT_TRUE(wait_until([&] { return stats(*mon_)["heartbeats"] > hb1 + n_ / 2; }, 20s))
        << "the fleet's heartbeats stopped being accepted";
    EXPECT_TRUE(stack_->ping(Svc::kMonitor));
    report("hostile input: monitor heartbeat SUB (from a PUB)",
           {{"sent", sent}, {"uncounted_by_design", sent - counted}},
           {{"rejected_rise", counted},
            {"fleet_heartbeats_accepted", stats(*mon_)["heartbeats"] - hb0}});
  }

  // Monitor ack PULL (nothing is pending yet: no legitimate ack can repeat).
  {
    SocketOptions o;
    o.send_timeout_ms = 5000;
    zmq::socket_t push = make_socket(stack_->ctx(), zmq::socket_type::push, o);
    push.connect(stack_->ack_endpoint());
    const auto g = ack_garbage(2);
    auto [sent, counted] = feed(
        g,
        [&](const Garbage& m) {
          std::vector<std::string_view> f(m.frames.begin(), m.frames.end());
          return send_frames(push, f, zmq::send_flags::none);
        },
        [&] { return mon_metric("rmon_acks_rejected_total"); });
    EXPECT_TRUE(stack_->ping(Svc::kMonitor));
    report("hostile input: monitor ack PULL (from a PUSH)",
           {{"sent", sent}, {"over_maxmsgsize", sent - counted}},
           {{"acks_rejected_rise", counted},
            {"unknown_event", mon_metric("rmon_acks_rejected_total", "unknown_event")},
            {"acks_accepted", stats(*mon_)["acks"]}});
  }

  requests(
      Svc::kMonitor, control_garbage(3),
      [&] { return mon_metric("rmon_control_requests_total", "outcome=\"error\""); },
      "monitor control ROUTER (DEALER, REQ)");
  requests(
      Svc::kTaskQueue, task_api_garbage(4),
      [&] {
        const std::string text = stack_->metrics(Svc::kTaskQueue);
        return static_cast<uint64_t>(metric(text, "tq_requests_total", "outcome=\"bad_request\"") +
                                     metric(text, "tq_requests_total", "outcome=\"unknown_op\""));
      },
      "task-queue API ROUTER (DEALER, REQ)");
  requests(
      Svc::kPoolManager, pool_api_garbage(5), [&] { return stats(*pm_)["rejected_requests"]; },
      "pool-manager API ROUTER (DEALER, REQ)");

  // Each consumer's event PULL, through its relay, while the victims time
  // out: the garbage goes to both relays a few messages at a time (pacing,
  // not synchronisation), cycling through the list until every message went
  // once and half of the real events have crossed in the middle of it.
  {
    std::vector<std::size_t> all(kVictims);
    for (std::size_t i = 0; i < kVictims; ++i) all[i] = i;
    victims_->cut(all, 500ms);
    std::array<EventRelay*, 2> relays = {relay_[1].get(), relay_[2].get()};
    auto rejected = [&](Svc s) {
      const char* family =
          s == Svc::kTaskQueue ? "tq_events_received_total" : "pm_events_received_total";
      return static_cast<uint64_t>(metric(stack_->metrics(s), family, "rejected"));
    };
    const uint64_t tq0 = rejected(Svc::kTaskQueue), pm0 = rejected(Svc::kPoolManager);
    const auto g = event_garbage(6);
    uint64_t sent = 0;
    const auto begin = std::chrono::steady_clock::now();
    auto crossed = [&] {
      return relays[0]->forwarded() >= kVictims / 2 && relays[1]->forwarded() >= kVictims / 2;
    };
    while (sent < g.size() || (!crossed() && std::chrono::steady_clock::now() < begin + 30s)) {
      for (EventRelay* r : relays) r->inject(g[sent % g.size()].frames);
      if (++sent % 10 == 0) std::this_thread::sleep_until(begin + sent * 5ms);
    }
    const uint64_t forwarded_amid = std::min(relays[0]->forwarded(), relays[1]->forwarded());
    EXPECT_TRUE(crossed()) << "the victims' events did not cross the relays amid the garbage";
    for (EventRelay* r : relays) EXPECT_TRUE(r->wait_injected());
    EXPECT_TRUE(wait_until([&] {
      return rejected(Svc::kTaskQueue) - tq0 == sent && rejected(Svc::kPoolManager) - pm0 == sent;
    })) << "task-queue rejected "
        << rejected(Svc::kTaskQueue) - tq0 << ", pool-manager " << rejected(Svc::kPoolManager) - pm0
        << " of " << sent;
    for (Svc s : {Svc::kTaskQueue, Svc::kPoolManager}) {
      EXPECT_TRUE(stack_->ping(s));
      report(std::string("hostile input: ") + name(s) + " event PULL (through a relay)",
             {{"sent", sent}, {"distinct", g.size()}, {"victims_cut", kVictims}},
             {{"events_rejected_rise", rejected(s) - (s == Svc::kTaskQueue ? tq0 : pm0)},
              {"real_events_forwarded_amid_garbage", forwarded_amid},
              {"still_answers_ping", stack_->ping(s) ? 1u : 0u}});
    }
  }

  load.stop();
  ASSERT_EQ(load.errors, 0u) << load.first_error;
  std::map<std::string, uint64_t> m, t, p;
  EXPECT_TRUE(wait_until(
      [&] {
        m = stats(*mon_);
        t = stats(*tq_);
        p = stats(*pm_);
        return m["timeouts"] >= kVictims && m["events_pending"] == 0 &&
               t["reassigned"] >= kVictims && p["released_by_timeout"] >= kVictims;
      },
      60s))
      << "the victims' events did not settle";

  // The state is what the legitimate load alone produces.
  for (Svc s : kServices) {
    EXPECT_TRUE(stack_->ping(s)) << name(s);
    EXPECT_EQ(stack_->starts(s), 1) << name(s);
    EXPECT_TRUE(stack_->running(s)) << name(s);
  }
  EXPECT_EQ(m["runners"], n_ + kVictims) << "garbage added or removed a runner";
  EXPECT_EQ(m["running"] + m["suspect"], n_);
  EXPECT_EQ(m["failed"], kVictims);
  EXPECT_EQ(m["timeouts"], kVictims);
  EXPECT_EQ(m["events_pending"], 0u);
  EXPECT_EQ(t["queued"], load.submitted - load.leased + kVictims);
  EXPECT_EQ(t["leased"], load.leased - load.completed);
  EXPECT_EQ(t["completed"], load.completed);
  EXPECT_EQ(t["dead"] + t["cancelled"], 0u);
  EXPECT_EQ(t["reassigned"], kVictims);
  EXPECT_EQ(p["acquired"], load.acquired + kVictims);
  EXPECT_EQ(p["released"], load.released);
  EXPECT_EQ(p["released_by_timeout"], kVictims);
  EXPECT_EQ(p["in_use"], load.acquired - load.released);
  report("hostile input: state after the garbage",
         {{"fleet_runners", n_},
          {"victims", kVictims},
          {"client_submits", load.submitted},
          {"client_leases", load.leased},
          {"client_completes", load.completed},
          {"client_acquires", load.acquired},
          {"client_releases", load.released}},
         {{"monitor_runners", m["runners"]},
          {"monitor_timeouts", m["timeouts"]},
          {"events_pending", m["events_pending"]},
          {"tq_queued", t["queued"]},
          {"tq_leased", t["leased"]},
          {"tq_completed", t["completed"]},
          {"tq_reassigned", t["reassigned"]},
          {"pm_in_use", p["in_use"]},
          {"pm_released_by_timeout", p["released_by_timeout"]},
          {"restarts", 0}});
}

// A defect this suite found, fixed in EventConsumer: a consumer's event PULL
// connects, and with ZMQ_MAXMSGSIZE set libzmq (4.3.4) ended the session on
// an oversized frame without ever reconnecting, cutting the consumer off from
// every later timeout event while it still answered ping. Now the frame
// reaches the decoder, which rejects it, and the next one gets through.
TEST(HostileEventSocket, OversizedEventFrameDoesNotCutTheConsumerOffForGood) {
  StackOptions o;
  o.relay_events = true;
  FaultStack stack(o);
  EventRelay relay(stack.ctx(), stack.group_endpoint(Svc::kTaskQueue),
                   stack.consumer_events_endpoint(Svc::kTaskQueue));
  ASSERT_NO_FATAL_FAILURE(stack.start_all());
  auto rejected = [&] {
    return metric(stack.metrics(Svc::kTaskQueue), "tq_events_received_total", "rejected");
  };
  relay.inject({"garbage"});
  ASSERT_TRUE(wait_until([&] { return rejected() == 1; }));
  relay.inject({std::string(70 * 1024, 'x')});  // over protocol::kMaxFrame
  relay.inject({"garbage"});
  EXPECT_TRUE(wait_until([&] { return rejected() == 3; }, 20s))
      << "task-queue stopped reading its event socket; rejected=" << rejected();
  EXPECT_TRUE(stack.ping(Svc::kTaskQueue));
}

}  // namespace
}  // namespace rmon::fault
