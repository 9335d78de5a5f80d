#pragma once
// ingest_bench --curve: ingest over CURVE against raw ZeroMQ (see the modes at
// the top of ingest_bench.cpp), and the CURVE pieces the handshake storm
// (ingest_handshake.cpp) shares with it: the keys of a run, raw CURVE servers,
// waiting for XPUB subscriptions, the process's CPU time. Used by one thread.

#include <zmq.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "ingest_common.hpp"
#include "rmon/security/curve_socket.hpp"
#include "rmon/security/keys.hpp"

namespace rmon::bench::ingest {

namespace sec = rmon::security;

// CPU seconds this process used so far, every thread (not its children).
double process_cpu();

// Makes `socket` a CURVE server with no ZAP domain: no handler is asked, any
// client key gets in, so it costs CURVE alone. (set_curve_server_options
// cannot leave the domain unset: libzmq refuses an empty one.)
void make_raw_curve_server(zmq::socket_t& socket, const sec::SecretKey& server_secret);

// "lowest–highest" of `v`, each printed with `fmt` (a double's format); empty
// when `v` is.
std::string range(std::vector<double> v, const char* fmt);

// The keys of a CURVE run, in a temporary folder removed afterwards: the
// monitor's pair (runner-monitor.key_secret) and `runner_keys` runner pairs
// enrolled in clients/ with role runner and prefix "runner-" (the fleet's ids).
// Throws when a key cannot be saved.
class CurveKeys {
 public:
  explicit CurveKeys(std::size_t runner_keys);
  ~CurveKeys();
  CurveKeys(const CurveKeys&) = delete;
  CurveKeys& operator=(const CurveKeys&) = delete;

  void configure(rmon::monitor::MonitorConfig& c) const;
  sec::ClientKeys client(std::size_t k) const {
    return {runners_[k % runners_.size()], server_.public_key};
  }
  const sec::SecretKey& server_secret() const { return server_.secret_key; }
  std::size_t size() const { return runners_.size(); }

 private:
  std::filesystem::path dir_;
  sec::KeyPair server_ = sec::KeyPair::generate();
  std::vector<sec::KeyPair> runners_;
};

// Waits until each XPUB socket of `xpubs` has its subscriber's subscription:
// the connection's handshake (CURVE and ZAP included) is then done, and what
// the socket sends is delivered. Calls `on_ready(i)` for each as it gets
// there. Returns how many did before `limit`.
template <class OnReady>
std::size_t await_subscriptions(std::vector<zmq::socket_t>& xpubs, std::chrono::milliseconds limit,
                                OnReady on_ready) {
  std::vector<std::size_t> pending(xpubs.size());
  for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  std::vector<zmq::pollitem_t> items;
  const auto deadline = SteadyClock::now() + limit;
  while (!pending.empty() && SteadyClock::now() < deadline) {
    items.clear();
    for (std::size_t i : pending) items.push_back({xpubs[i].handle(), 0, ZMQ_POLLIN, 0});
    if (zmq::poll(items, std::chrono::milliseconds(100)) == 0) continue;
    std::vector<std::size_t> still;
    still.reserve(pending.size());
    for (std::size_t j = 0; j < items.size(); ++j) {
      const std::size_t i = pending[j];
      if ((items[j].revents & ZMQ_POLLIN) == 0) {
        still.push_back(i);
        continue;
      }
      zmq::message_t m;
      while (xpubs[i].recv(m, zmq::recv_flags::dontwait)) {
      }
      on_ready(i);
    }
    pending.swap(still);
  }
  return xpubs.size() - pending.size();
}

// `p.rounds` rounds of raw-plain, raw-curve, monitor-off and monitor-curve,
// each printed, then their medians and ratios against the target. Returns
// the process's exit code.
int curve_rounds(const Params& p);

}  // namespace rmon::bench::ingest
