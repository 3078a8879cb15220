#include "state/user_state.h"

#include <gtest/gtest.h>

namespace tierstream::state {
namespace {

using ingest::Event;
using ingest::EventType;

constexpr int64_t kOffset = 8 * 3'600'000;  // +08:00
// 2025-11-24T00:00:00+08:00: the start of local day D.
constexpr int64_t kDayStart = 1763913600000;
const int32_t kToday = DayOf(kDayStart, kOffset);

int64_t At(int days_ago, int64_t ms_into_day = 3'600'000) {
  return kDayStart - days_ago * kMsPerDay + ms_into_day;
}

class TierTest : public ::testing::Test {
 protected:
  void Own(EventType type, int64_t ts, int64_t fen = 0) {
    Event e;
    e.event_id = "e";
    e.user_id = "u";
    e.type = type;
    e.ts_ms = ts;
    e.amount_fen = fen;
    ApplyOwnEvent(&s_, e, kOffset, kToday);
  }
  Tier TierNow() { return EvaluateTier(s_, ComputeWindows(s_, kToday), kToday, kOffset, rules_); }

  UserState s_;
  TierRules rules_;
};

TEST_F(TierTest, NewWhileJoinedUnderThirtyDaysAgo) {
  Own(EventType::kJoin, At(29));
  EXPECT_EQ(TierNow(), Tier::kNew);
}

TEST_F(TierTest, NotNewFromDayThirty) {
  Own(EventType::kJoin, At(30));
  EXPECT_EQ(TierNow(), Tier::kDormant);
}

TEST_F(TierTest, ActiveAtThreeInteractionsInSevenDays) {
  Own(EventType::kJoin, At(60));
  Own(EventType::kMessage, At(6));
  Own(EventType::kReaction, At(0));
  EXPECT_EQ(TierNow(), Tier::kRegular);  // two
  Own(EventType::kCheckin, At(3));
  EXPECT_EQ(TierNow(), Tier::kActive);  // three
}

TEST_F(TierTest, InteractionSevenDaysAgoIsOutsideTheWindow) {
  Own(EventType::kJoin, At(60));
  Own(EventType::kMessage, At(7));
  EXPECT_EQ(ComputeWindows(s_, kToday).interactions_7d, 0);
  EXPECT_EQ(ComputeWindows(s_, kToday).interactions_30d, 1);
  EXPECT_EQ(TierNow(), Tier::kDormant);
}

TEST_F(TierTest, WindowEdgeFollowsLocalMidnightNotUtc) {
  Own(EventType::kJoin, At(60));
  // 23:59:59.999 local on day D-7 (15:59:59.999Z) is outside; 00:00 of D-6 inside.
  Own(EventType::kMessage, kDayStart - 6 * kMsPerDay - 1);
  EXPECT_EQ(ComputeWindows(s_, kToday).interactions_7d, 0);
  Own(EventType::kMessage, kDayStart - 6 * kMsPerDay);
  EXPECT_EQ(ComputeWindows(s_, kToday).interactions_7d, 1);
}

TEST_F(TierTest, HighValueNeedsSpendAndRepeatOrders) {
  Own(EventType::kJoin, At(100));
  for (int i = 0; i < 4; ++i) Own(EventType::kOrder, At(i), 12500);  // 4 orders: 3 repeats, 500.00
  EXPECT_EQ(ComputeWindows(s_, kToday).spend_30d_fen, 50000);
  EXPECT_EQ(TierNow(), Tier::kHighValue);
  Own(EventType::kRefund, At(0), 1);  // 499.99
  EXPECT_EQ(TierNow(), Tier::kDormant);
}

TEST_F(TierTest, ThreeOrdersAreNotEnoughRepeats) {
  Own(EventType::kJoin, At(100));
  for (int i = 0; i < 3; ++i) Own(EventType::kOrder, At(i), 100000);
  EXPECT_EQ(TierNow(), Tier::kDormant);
}

TEST_F(TierTest, HighValueOutranksNew) {
  Own(EventType::kJoin, At(1));
  for (int i = 0; i < 4; ++i) Own(EventType::kOrder, At(0), 20000);
  EXPECT_EQ(TierNow(), Tier::kHighValue);
}

TEST_F(TierTest, LeaveWinsTiesAndLatestMembershipEventCounts) {
  Own(EventType::kJoin, At(50));
  Own(EventType::kLeave, At(50));
  EXPECT_EQ(TierNow(), Tier::kLeft);
  Own(EventType::kJoin, At(60));  // an older join changes nothing
  EXPECT_EQ(TierNow(), Tier::kLeft);
  Own(EventType::kJoin, At(50, 3'600'001));
  EXPECT_NE(TierNow(), Tier::kLeft);
}

TEST_F(TierTest, JoinedAtFallsBackToFirstOwnEventThenReferral) {
  UserState referred;
  ApplyReferralCredit(&referred, At(5));
  EXPECT_EQ(referred.joined_at(), At(5));
  EXPECT_EQ(referred.points, 10);
  Own(EventType::kMessage, At(3));
  EXPECT_EQ(s_.joined_at(), At(3));
  Own(EventType::kJoin, At(1));
  EXPECT_EQ(s_.joined_at(), At(1));
}

TEST_F(TierTest, PointsFollowTheScheme) {
  Own(EventType::kMessage, At(1));
  Own(EventType::kReaction, At(1));
  Own(EventType::kCheckin, At(1));
  Own(EventType::kShare, At(1));
  Own(EventType::kOrder, At(1), 12999);  // +129
  Own(EventType::kRefund, At(1), 2950);  // -29
  EXPECT_EQ(s_.points, 1 + 1 + 2 + 3 + 129 - 29);
}

TEST_F(TierTest, NextCheckDayIsWhenTheSevenDayWindowEmpties) {
  Own(EventType::kJoin, At(100));
  Own(EventType::kMessage, At(2));
  EXPECT_EQ(NextCheckDay(s_, kToday, kOffset, rules_), kToday - 2 + 7);
  EXPECT_EQ(TierNow(), Tier::kRegular);
  const int32_t later = kToday + 5;
  PruneBuckets(&s_, later);
  EXPECT_EQ(EvaluateTier(s_, ComputeWindows(s_, later), later, kOffset, rules_), Tier::kDormant);
}

TEST(UserStateCodec, RoundTrips) {
  UserState s;
  s.membership_ts = 1763913600000;
  s.membership_leave = true;
  s.first_join_ts = 1763913600001;
  s.first_own_ts = 1763913600000;
  s.last_active = 1763913609999;
  s.spend_total_fen = -1234;
  s.points = 77;
  s.orders_total = 5;
  s.referrals = 2;
  s.tier = Tier::kLeft;
  s.buckets = {{20000, 3, 1, 500}, {20005, 0, 2, -100}};
  std::string bytes;
  EncodeUserState(s, &bytes);
  UserState d;
  ASSERT_TRUE(DecodeUserState(bytes, &d).ok());
  EXPECT_EQ(d.membership_ts, s.membership_ts);
  EXPECT_TRUE(d.membership_leave);
  EXPECT_EQ(d.first_join_ts, s.first_join_ts);
  EXPECT_EQ(d.first_ref_ts, kNoTs);
  EXPECT_EQ(d.last_active, s.last_active);
  EXPECT_EQ(d.spend_total_fen, -1234);
  EXPECT_EQ(d.points, 77);
  EXPECT_EQ(d.orders_total, 5u);
  EXPECT_EQ(d.tier, Tier::kLeft);
  ASSERT_EQ(d.buckets.size(), 2u);
  EXPECT_EQ(d.buckets[1].day, 20005);
  EXPECT_EQ(d.buckets[1].spend_fen, -100);
}

TEST(UserStateCodec, RejectsCorruptBytes) {
  UserState s;
  std::string bytes;
  EncodeUserState(s, &bytes);
  UserState d;
  EXPECT_FALSE(DecodeUserState("", &d).ok());
  EXPECT_FALSE(DecodeUserState(std::string(1, '\x07'), &d).ok());
  EXPECT_FALSE(DecodeUserState(bytes.substr(0, bytes.size() - 1), &d).ok());
  EXPECT_FALSE(DecodeUserState(bytes + "x", &d).ok());
}

TEST(UserStateCodec, RejectsBucketDayDeltasThatWouldOverflow) {
  // Regression (found by codec_fuzz): a huge negative day delta overflowed
  // the running day sum instead of being reported as corruption.
  const unsigned char kInput[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x08, 0x07, 0x04, 0xff, 0xff,
                                  0x00, 0x00, 0x00, 0x00, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0x21, 0x01, 0xf5, 0x04, 0x08, 0x71, 0x07};
  UserState s;
  EXPECT_FALSE(
      DecodeUserState(std::string_view(reinterpret_cast<const char*>(kInput), sizeof kInput), &s)
          .ok());
}

}  // namespace
}  // namespace tierstream::state
