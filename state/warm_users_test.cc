#include "state/warm_users.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tierstream::state {
namespace {

std::string Bytes(int i) { return std::string(100, static_cast<char>('a' + i % 26)); }

TEST(WarmUsers, KeepsWithinItsBudgetOldestFirst) {
  // 170 bytes per entry with a 5-character id (100 encoded, 1 + 5 of id, 64
  // of overhead), 171 with 6: ten fit in 1,710, and one more after one goes.
  WarmUsers warm(1710);
  std::vector<std::string> dropped;
  auto drop = [&](std::string_view id, std::string_view, int32_t) { dropped.emplace_back(id); };
  for (int i = 0; i < 10; ++i) warm.Put(i, "user" + std::to_string(i), Bytes(i), 0, drop);
  EXPECT_EQ(warm.size(), 10u);
  EXPECT_TRUE(dropped.empty());
  EXPECT_EQ(warm.bytes(), 1700u);
  warm.Put(10, "user10", Bytes(10), 0, drop);
  EXPECT_EQ(dropped, std::vector<std::string>{"user0"});
  EXPECT_EQ(warm.bytes(), 1701u);
  std::string out;
  EXPECT_FALSE(warm.Take(0, "user0", &out));
  ASSERT_TRUE(warm.Take(5, "user5", &out));
  EXPECT_EQ(out, Bytes(5));
  EXPECT_FALSE(warm.Contains(5, "user5"));
  // Taken and put back: she is the newest now, and her old place is stale.
  warm.Put(5, "user5", Bytes(5), 0, drop);
  warm.Put(11, "user11", Bytes(11), 0, drop);
  EXPECT_EQ(dropped, (std::vector<std::string>{"user0", "user1"}));
  for (int i = 12; i < 15; ++i) warm.Put(i, "user" + std::to_string(i), Bytes(i), 0, drop);
  EXPECT_EQ(dropped, (std::vector<std::string>{"user0", "user1", "user2", "user3", "user4"}));
  warm.Put(15, "user15", Bytes(15), 0, drop);  // skips user5's stale place
  EXPECT_EQ(dropped,
            (std::vector<std::string>{"user0", "user1", "user2", "user3", "user4", "user6"}));
  EXPECT_TRUE(warm.Contains(5, "user5"));
  EXPECT_LE(warm.bytes(), 1710u);
}

TEST(WarmUsers, OneUserPerHashAndNothingOverTheBudget) {
  WarmUsers warm(1000);
  std::vector<std::string> dropped;
  auto drop = [&](std::string_view id, std::string_view, int32_t) { dropped.emplace_back(id); };
  warm.Put(7, "a", "x", 0, drop);
  warm.Put(7, "b", "y", 0, drop);  // the same hash: not kept
  warm.Put(8, "big", std::string(2000, 'z'), 0, drop);
  EXPECT_EQ(dropped, (std::vector<std::string>{"b", "big"}));
  std::string out;
  EXPECT_FALSE(warm.Take(7, "b", &out));
  ASSERT_TRUE(warm.Take(7, "a", &out));
  EXPECT_EQ(out, "x");
  EXPECT_EQ(warm.bytes(), 0u);
  WarmUsers off;  // no budget: keeps nothing
  EXPECT_FALSE(off.enabled());
  off.Put(1, "a", "x", 0, drop);
  EXPECT_EQ(off.size(), 0u);
}

TEST(WarmUsers, StaleEntriesDoNotAccumulate) {
  WarmUsers warm(1 << 20);
  auto drop = [](std::string_view, std::string_view, int32_t) {};
  std::string out;
  for (int round = 0; round < 100000; ++round) {
    warm.Put(1, "u", "state", 0, drop);
    ASSERT_TRUE(warm.Take(1, "u", &out));
  }
  EXPECT_EQ(warm.size(), 0u);
  EXPECT_EQ(warm.bytes(), 0u);
  EXPECT_LE(warm.fifo_size_for_testing(), 4096u + 2);
}

}  // namespace
}  // namespace tierstream::state
