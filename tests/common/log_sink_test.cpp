// FdSink and the async logger: a stderr that nobody reads never blocks the
// logging thread for more than one short grace, lines are dropped and
// counted, and writing resumes when the reader comes back.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "rmon/log_sink.hpp"

namespace rmon {
namespace {

using namespace std::chrono_literals;

TEST(FdSink, AStuckReaderCostsOneGraceThenLinesAreDroppedAndCounted) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  auto sink = std::make_shared<FdSink>(fds[1], 20ms);
  spdlog::logger logger("stuck", sink);
  logger.set_pattern("%v");
  const std::string line(200, 'x');
  const auto t0 = std::chrono::steady_clock::now();
  // Far more than a pipe holds (64 KiB): the writer must not block.
  for (int i = 0; i < 5000; ++i) logger.info(line);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 5s);  // one 20 ms grace, not one per line, and never forever
  const uint64_t dropped = sink->dropped();
  EXPECT_GT(dropped, 4000u);

  // The reader comes back: lines go out again.
  char buf[4096];
  ASSERT_EQ(::fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
  while (::read(fds[0], buf, sizeof buf) > 0) {
  }
  logger.info("after");
  EXPECT_EQ(sink->dropped(), dropped);
  const ssize_t n = ::read(fds[0], buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "after\n");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(FdSink, AClosedReaderDropsWithoutKillingTheProcess) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  auto sink = std::make_shared<FdSink>(fds[1], 20ms);
  spdlog::logger logger("closed", sink);
  logger.info("nobody reads this");  // POLLERR: dropped, no SIGPIPE
  EXPECT_EQ(sink->dropped(), 1u);
  ::close(fds[1]);
}

}  // namespace
}  // namespace rmon
