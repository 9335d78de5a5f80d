#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "deadline_index.hpp"

namespace rmon::monitor {
namespace {

TEST(DeadlineIndex, PopsOnlyWhatIsDueInDeadlineOrder) {
  DeadlineIndex idx;
  TimedNode a, b, c;
  idx.arm(&a, 30);
  idx.arm(&b, 10);
  idx.arm(&c, 20);
  EXPECT_EQ(idx.pop_due(5), nullptr);
  EXPECT_EQ(idx.pop_due(25), &b);
  EXPECT_EQ(idx.pop_due(25), &c);
  EXPECT_EQ(idx.pop_due(25), nullptr);
  EXPECT_FALSE(b.armed());
  EXPECT_TRUE(a.armed());
  EXPECT_EQ(idx.size(), 1u);
}

TEST(DeadlineIndex, RearmingMovesANodeEarlierOrLater) {
  DeadlineIndex idx;
  TimedNode a, b;
  idx.arm(&a, 10);
  idx.arm(&b, 20);
  idx.arm(&a, 30);  // later
  EXPECT_EQ(idx.top(), &b);
  idx.arm(&a, 5);  // earlier
  EXPECT_EQ(idx.top(), &a);
  EXPECT_EQ(idx.size(), 2u);
}

TEST(DeadlineIndex, DisarmRemovesFromTheMiddle) {
  DeadlineIndex idx;
  std::vector<TimedNode> nodes(10);
  for (int i = 0; i < 10; ++i) idx.arm(&nodes[i], i);
  idx.disarm(&nodes[4]);
  idx.disarm(&nodes[4]);  // no-op
  std::vector<int64_t> order;
  while (TimedNode* n = idx.pop_due(100)) order.push_back(n->due_ns);
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3, 5, 6, 7, 8, 9}));
}

TEST(DeadlineIndex, RandomOperationsMatchASortedReference) {
  std::mt19937_64 rng(42);
  DeadlineIndex idx;
  std::vector<TimedNode> nodes(500);
  for (int round = 0; round < 20'000; ++round) {
    TimedNode& n = nodes[rng() % nodes.size()];
    switch (rng() % 3) {
      case 0:
      case 1:
        idx.arm(&n, static_cast<int64_t>(rng() % 10'000));
        break;
      case 2:
        idx.disarm(&n);
        break;
    }
  }
  std::vector<int64_t> expected;
  for (const auto& n : nodes) {
    if (n.armed()) expected.push_back(n.due_ns);
  }
  std::sort(expected.begin(), expected.end());
  std::vector<int64_t> got;
  while (TimedNode* n = idx.pop_due(1'000'000)) got.push_back(n->due_ns);
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace rmon::monitor
