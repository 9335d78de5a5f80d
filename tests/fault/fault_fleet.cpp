// FleetPublisher and EventRelay (fault_support.hpp): the two helpers that
// own a thread.

#include <climits>

#include "../support/wait.hpp"
#include "fault_support.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::fault {

namespace {
using SteadyClock = std::chrono::steady_clock;
constexpr int64_t kNever = INT64_MAX;

int64_t steady_ns(SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

FleetPublisher::FleetPublisher(zmq::context_t& ctx, std::string endpoint, tools::FleetOptions opts)
    : ctx_(ctx),
      endpoint_(std::move(endpoint)),
      size_(opts.runners),
      interval_(static_cast<Ms::rep>(opts.interval_ms)),
      fleet_(opts),
      cut_at_(std::make_unique<std::atomic<int64_t>[]>(opts.runners)) {
  ids_.reserve(size_);
  for (std::size_t i = 0; i < size_; ++i) {
    ids_.push_back(fleet_.runner_id(i));
    cut_at_[i].store(kNever);
  }
}

FleetPublisher::~FleetPublisher() { stop(); }

void FleetPublisher::assign(std::size_t i, std::string task_id, uint64_t attempt) {
  std::lock_guard lock(mu_);
  fleet_.assign(i, std::move(task_id), attempt);
}

void FleetPublisher::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void FleetPublisher::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void FleetPublisher::cut(const std::vector<std::size_t>& which, Ms spread) {
  const auto now = SteadyClock::now();
  for (std::size_t k = 0; k < which.size(); ++k) {
    const auto offset =
        which.size() > 1 ? spread * static_cast<int64_t>(k) / static_cast<int64_t>(which.size() - 1)
                         : Ms(0);
    cut_at_[which[k]].store(steady_ns(now + offset));
  }
}

void FleetPublisher::resume(const std::vector<std::size_t>& which) {
  for (std::size_t i : which) cut_at_[i].store(kNever);
}

bool FleetPublisher::is_cut(std::size_t i) const {
  return cut_at_[i].load() <= steady_ns(SteadyClock::now());
}

bool FleetPublisher::wait_rounds(uint64_t n, Ms timeout) const {
  const uint64_t target = rounds_.load() + n;
  return testing::wait_until([&] { return rounds_.load() >= target; }, timeout);
}

void FleetPublisher::run() {
  SocketOptions o;
  o.send_hwm = 200'000;  // a whole pass fits: PUB drops what exceeds it
  o.send_timeout_ms = 1000;
  zmq::socket_t pub = make_socket(ctx_, zmq::socket_type::pub, o);
  // Several monitors (a pair): one PUB connected to each sends to all.
  for (std::size_t from = 0; from <= endpoint_.size();) {
    const std::size_t comma = std::min(endpoint_.find(',', from), endpoint_.size());
    pub.connect(endpoint_.substr(from, comma - from));
    from = comma + 1;
  }
  // Pacing: a pass is spread over the interval in steps of about 5 ms.
  const std::size_t steps = std::max<std::size_t>(1, static_cast<std::size_t>(interval_ / 5ms));
  const std::size_t chunk = std::max<std::size_t>(1, (size_ + steps - 1) / steps);
  while (!stop_.load()) {
    const auto pass = SteadyClock::now();
    for (std::size_t first = 0; first < size_ && !stop_.load(); first += chunk) {
      const int64_t now = steady_ns(SteadyClock::now());
      const std::size_t last = std::min(size_, first + chunk);
      {
        std::lock_guard lock(mu_);
        for (std::size_t i = first; i < last; ++i) {
          if (cut_at_[i].load(std::memory_order_relaxed) <= now) continue;
          if (fleet_.send(pub, i, zmq::send_flags::dontwait)) sent_.fetch_add(1);
        }
      }
      std::this_thread::sleep_until(pass + interval_ * static_cast<int64_t>(last) /
                                               static_cast<int64_t>(size_));
    }
    rounds_.fetch_add(1);
    std::this_thread::sleep_until(pass + interval_);
  }
}

EventRelay::EventRelay(zmq::context_t& ctx, std::string from, std::string to) : ctx_(ctx) {
  thread_ = std::thread([this, from = std::move(from), to = std::move(to)] { run(from, to); });
}

EventRelay::~EventRelay() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void EventRelay::inject(std::vector<std::string> frames) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(frames));
  queued_.fetch_add(1);
}

bool EventRelay::wait_injected(Ms timeout) const {
  return testing::wait_until([&] { return injected_.load() == queued_.load(); }, timeout);
}

void EventRelay::run(std::string from, std::string to) {
  SocketOptions o;
  o.recv_timeout_ms = 10;
  o.send_timeout_ms = 50;  // a consumer away: retry rather than block a stop
  zmq::socket_t in = make_socket(ctx_, zmq::socket_type::pull, o);
  in.connect(from);
  zmq::socket_t out = make_socket(ctx_, zmq::socket_type::push, o);
  out.bind(to);
  auto send_all = [&](const std::vector<std::string>& frames) {
    std::vector<std::string_view> views(frames.begin(), frames.end());
    while (!stop_.load()) {
      if (send_frames(out, views, zmq::send_flags::none)) return true;
    }
    return false;
  };
  std::vector<zmq::message_t> frames;
  std::vector<std::vector<std::string>> batch;
  while (!stop_.load()) {
    // Forward what the monitor sent, then what the test injected.
    while (recv_frames(in, frames)) {
      std::vector<std::string> copy;
      for (auto& f : frames) copy.push_back(f.to_string());
      if (!send_all(copy)) return;
      forwarded_.fetch_add(1);
    }
    {
      std::lock_guard lock(mu_);
      batch.swap(queue_);
    }
    for (const auto& m : batch) {
      if (!send_all(m)) return;
      injected_.fetch_add(1);
    }
    batch.clear();
  }
}

}  // namespace rmon::fault
