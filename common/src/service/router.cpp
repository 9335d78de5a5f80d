#include "rmon/service/router.hpp"

#include <zmq_addon.hpp>

#include <iterator>

namespace rmon {

std::size_t receive_requests(zmq::socket_t& router, std::vector<Request>& out, std::size_t max) {
  std::size_t n = 0;
  std::vector<zmq::message_t> frames;
  while (n < max) {
    frames.clear();
    auto got = zmq::recv_multipart(router, std::back_inserter(frames), zmq::recv_flags::dontwait);
    if (!got) break;
    if (frames.size() < 2) continue;
    Request r;
    r.body = std::move(frames.back());
    frames.pop_back();
    r.envelope = std::move(frames);
    out.push_back(std::move(r));
    ++n;
  }
  return n;
}

void send_replies(zmq::socket_t& router, std::vector<Request>& requests) {
  for (Request& r : requests) {
    bool ok = true;
    for (zmq::message_t& f : r.envelope) {
      if (!router.send(f, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        ok = false;
        break;
      }
    }
    // ROUTER drops a message for an unknown peer; only a full pipe refuses
    // the first frame, and then nothing was queued.
    if (ok) (void)router.send(zmq::buffer(r.reply), zmq::send_flags::dontwait);
  }
}

}  // namespace rmon
