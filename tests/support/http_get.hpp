#pragma once
// HTTP/1.0 GET on 127.0.0.1:port for tests: the body of a 200 reply, ""
// on any failure. Send and receive time out after 3 s.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace rmon::testing {

// Sends `request` as it is to 127.0.0.1:port and returns the whole reply
// (status line, headers, body), "" when the connection failed.
inline std::string http_exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string& req = request;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[65536];
      ssize_t n = 0;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

struct HttpReply {
  int status = 0;  // 0: no reply
  std::string body;
};

// GET `path`: the status and body of whatever reply came.
inline HttpReply http_request(int port, const std::string& path) {
  const std::string out =
      http_exchange(port, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  HttpReply r;
  if (out.size() < 12 || out.compare(0, 5, "HTTP/") != 0) return r;
  r.status = std::atoi(out.c_str() + 9);
  const auto body = out.find("\r\n\r\n");
  if (body != std::string::npos) r.body = out.substr(body + 4);
  return r;
}

inline std::string http_get(int port, const std::string& path) {
  const std::string out =
      http_exchange(port, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  const auto body = out.find("\r\n\r\n");
  if (out.compare(0, 12, "HTTP/1.1 200") != 0 && out.compare(0, 12, "HTTP/1.0 200") != 0) return {};
  return body == std::string::npos ? std::string() : out.substr(body + 4);
}

}  // namespace rmon::testing
