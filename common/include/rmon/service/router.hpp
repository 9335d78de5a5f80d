#pragma once
// The request/reply edge shared by every service's API: requests arrive on a
// ROUTER socket from REQ or DEALER clients as [identity..., (empty,) body];
// each is answered with the same envelope and one reply frame.

#include <zmq.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rmon {

struct Request {
  std::vector<zmq::message_t> envelope;  // every frame before the body
  zmq::message_t body;
  std::string reply;  // filled by the handler
  std::string_view body_view() const { return {body.data<char>(), body.size()}; }
};

// Receives the requests that are ready now (never blocks), at most `max`,
// appending them to `out`. Messages without an envelope are dropped: there is
// nobody to answer. Returns how many were appended.
std::size_t receive_requests(zmq::socket_t& router, std::vector<Request>& out, std::size_t max);

// Sends each request's reply; never blocks (a client that went away is not an
// error: its reply is dropped).
void send_replies(zmq::socket_t& router, std::vector<Request>& requests);

}  // namespace rmon
