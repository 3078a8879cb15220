#include "state/shard_state.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

namespace tierstream::state {
namespace {

using ingest::Event;
using ingest::EventType;

constexpr int64_t kDayStart = 1763913600000;  // 2025-11-24T00:00+08:00

class ShardStateTest : public ::testing::Test {
 protected:
  ShardStateTest() : shard_(0, Config{}) {}

  void Send(std::string user, EventType type, int64_t ts, std::string referrer = "") {
    ids_.push_back("e" + std::to_string(ids_.size()));
    users_.push_back(std::move(user));
    refs_.push_back(std::move(referrer));
    Event e;
    e.event_id = ids_.back();
    e.user_id = users_.back();
    e.referrer_id = refs_.back();
    e.type = type;
    e.ts_ms = ts;
    if (type == EventType::kOrder) e.amount_fen = 100;
    t_ = std::max(t_, ts);
    ASSERT_TRUE(shard_.MarkSeen(e.event_id, 0, ts));
    shard_.Apply(e, Today());
  }
  int32_t Today() const { return DayOf(t_, Config{}.utc_offset_ms); }
  KpiPartial Kpis() {
    EXPECT_TRUE(shard_.Sweep(Today(), SIZE_MAX));
    return shard_.Kpis(Today());
  }
  int64_t TierCount(Tier t) { return Kpis().tiers[static_cast<size_t>(t)]; }

  ShardState shard_;
  std::deque<std::string> ids_, users_, refs_;  // deque: stable string storage
  int64_t t_ = 0;
};

TEST_F(ShardStateTest, MemberTurnsDormantAsTimeAdvancesWithoutHerEvents) {
  Send("alice", EventType::kJoin, kDayStart - 40 * kMsPerDay);
  for (int i = 0; i < 3; ++i) Send("alice", EventType::kMessage, kDayStart + i);
  EXPECT_EQ(TierCount(Tier::kActive), 1);
  // Only another user's events move T: seven days later alice is dormant.
  Send("bob", EventType::kMessage, kDayStart + 7 * kMsPerDay);
  KpiPartial k = Kpis();
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kActive)], 0);
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kDormant)], 1);  // alice
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kNew)], 1);      // bob, first seen today
  Profile p;
  ASSERT_TRUE(shard_.GetProfile("alice", Today(), &p));
  EXPECT_EQ(p.tier, Tier::kDormant);
  EXPECT_EQ(p.interactions_7d, 0);
  EXPECT_EQ(p.interactions_30d, 3);
}

TEST_F(ShardStateTest, NewMemberStopsBeingNewOnDayThirty) {
  Send("carol", EventType::kJoin, kDayStart);
  Send("dave", EventType::kMessage, kDayStart + 29 * kMsPerDay);
  EXPECT_EQ(TierCount(Tier::kNew), 2);
  Send("dave", EventType::kMessage, kDayStart + 30 * kMsPerDay);
  KpiPartial k = Kpis();
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kNew)], 1);  // dave only
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kDormant)], 1);
  EXPECT_EQ(k.new_members_30d, 1);
}

TEST_F(ShardStateTest, SweepRunsInBoundedSlices) {
  for (int i = 0; i < 100; ++i) {
    for (int k = 0; k < 3; ++k) Send("u" + std::to_string(i), EventType::kMessage, kDayStart + k);
  }
  Send("z", EventType::kMessage, kDayStart + 8 * kMsPerDay);
  int slices = 0;
  while (!shard_.Sweep(Today(), 10)) ++slices;
  EXPECT_GE(slices, 9);
  EXPECT_EQ(shard_.Kpis(Today()).tiers[static_cast<size_t>(Tier::kNew)], 101);
}

TEST_F(ShardStateTest, ASweepCutShortByACheckpointResumesAfterReload) {
  // Regression (found by `tierstream verify` on a 10M-event replay): the
  // meta said a day was swept while part of its tier checks were still
  // pending, so after a restart those users kept stale tiers.
  for (int i = 0; i < 200; ++i) {
    // Long-standing members, active on one day only: their one pending
    // check is the day that window closes.
    Send("u" + std::to_string(i), EventType::kJoin, kDayStart - 100 * kMsPerDay);
    for (int k = 0; k < 3; ++k) {
      Send("u" + std::to_string(i), EventType::kMessage, kDayStart - 40 * kMsPerDay + k);
    }
  }
  EXPECT_EQ(Kpis().tiers[static_cast<size_t>(Tier::kActive)], 200);
  Send("late", EventType::kMessage, kDayStart);
  EXPECT_FALSE(shard_.Sweep(Today(), 50));  // cut short
  // Persist everything (as a checkpoint would) and reload it elsewhere.
  std::map<std::string, std::string> users;
  shard_.DrainDirty([&](std::string_view id, std::string_view bytes) {
    users[std::string(id)] = std::string(bytes);
  });
  std::string meta;
  shard_.EncodeMeta(1, 0, &meta);
  ShardState reloaded(0, Config{});
  uint64_t seq;
  int64_t rejected;
  ASSERT_TRUE(reloaded.DecodeMeta(meta, &seq, &rejected).ok());
  for (const auto& [id, bytes] : users) ASSERT_TRUE(reloaded.LoadUser(id, bytes, true).ok());
  reloaded.RebuildTimers();
  ASSERT_TRUE(reloaded.Sweep(Today(), SIZE_MAX));
  EXPECT_EQ(reloaded.Kpis(Today()).tiers, Kpis().tiers);
  EXPECT_EQ(reloaded.Kpis(Today()).tiers[static_cast<size_t>(Tier::kDormant)], 200);
}

TEST_F(ShardStateTest, DuplicateIdsAreRecognisedUntilTheHorizon) {
  EXPECT_TRUE(shard_.MarkSeen("x", 0, kDayStart));
  EXPECT_FALSE(shard_.MarkSeen("x", 0, kDayStart));
  EXPECT_TRUE(shard_.MarkSeen("x", 1, kDayStart));  // a credit is a different key
  const int32_t day = DayOf(kDayStart, Config{}.utc_offset_ms);
  shard_.ExpireSeen(day + 8);
  EXPECT_FALSE(shard_.MarkSeen("x", 0, kDayStart));
  shard_.ExpireSeen(day + 9);
  EXPECT_TRUE(shard_.MarkSeen("x", 0, kDayStart));
}

TEST_F(ShardStateTest, BackfilledEventIdsAreKeptFromTheirArrival) {
  // Regression: an event from half a year ago, arriving today, was forgotten
  // at the next expiry, so its retry counted twice.
  const int32_t today = DayOf(kDayStart, Config{}.utc_offset_ms);
  const int64_t old_ts = kDayStart - 180 * kMsPerDay;
  EXPECT_TRUE(shard_.MarkSeen("old", 0, old_ts, today));
  shard_.ExpireSeen(today + 8);
  EXPECT_FALSE(shard_.MarkSeen("old", 0, old_ts, today + 8));
  shard_.ExpireSeen(today + 9);
  EXPECT_TRUE(shard_.MarkSeen("old", 0, old_ts, today + 9));
}

TEST_F(ShardStateTest, KpiWindowsAndMetaRoundTrip) {
  Send("a", EventType::kJoin, kDayStart - 45 * kMsPerDay, "r");
  Send("b", EventType::kJoin, kDayStart - 5 * kMsPerDay, "r");
  Send("a", EventType::kOrder, kDayStart - 31 * kMsPerDay);
  Send("a", EventType::kOrder, kDayStart);
  KpiPartial k = Kpis();
  EXPECT_EQ(k.orders_30d, 1);
  EXPECT_EQ(k.referred_joins_30d, 1);
  EXPECT_EQ(k.referred_joins_prev_30d, 1);
  EXPECT_EQ(k.buyers_total, 1);
  EXPECT_EQ(k.repeat_buyers_total, 1);
  EXPECT_EQ(k.events_accepted, 4);

  std::string meta;
  shard_.EncodeMeta(42, 7, &meta);
  ShardState copy(0, Config{});
  uint64_t seq = 0;
  int64_t rejected = 0;
  ASSERT_TRUE(copy.DecodeMeta(meta, &seq, &rejected).ok());
  EXPECT_EQ(seq, 42u);
  EXPECT_EQ(rejected, 7);
  KpiPartial c = copy.Kpis(Today());
  EXPECT_EQ(c.orders_30d, k.orders_30d);
  EXPECT_EQ(c.members, k.members);
  EXPECT_EQ(c.tiers, k.tiers);
  EXPECT_FALSE(copy.DecodeMeta(meta.substr(0, meta.size() - 1), &seq, &rejected).ok());
}

}  // namespace
}  // namespace tierstream::state
