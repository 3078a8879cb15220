// Hand-computed cases for the batch evaluator (SPEC §2–§5). Every expected
// value below was worked out by hand from the SPEC, not by running the code.
#include "verify/batch_eval.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/time.h"

namespace tierstream::verify {
namespace {

using ingest::EventType;

constexpr int64_t kOffset = 8 * 3'600'000;  // +08:00
constexpr int64_t kHour = 3'600'000;
constexpr int32_t kD = 20781;  // 2026-11-24 in +08:00

// The ts of local time `ms_into_day` on the day `days_ago` days before kD.
int64_t At(int days_ago, int64_t ms_into_day = 12 * kHour) {
  return static_cast<int64_t>(kD - days_ago) * kMsPerDay - kOffset + ms_into_day;
}
constexpr int64_t kLastMs = kMsPerDay - 1;  // 23:59:59.999 local

int64_t Rfc(const char* text) {
  std::optional<int64_t> ts = ParseRfc3339(text);
  EXPECT_TRUE(ts.has_value()) << text;
  return ts.value_or(0);
}

// An owned copy of an event; Event borrows its strings.
struct Ev {
  std::string id, user, referrer;
  EventType type = EventType::kMessage;
  int64_t ts = 0, fen = 0;
  bool community = false;
};

class Feed {
 public:
  explicit Feed(Thresholds t = {}, int64_t offset = kOffset) : eval_(offset, t) {}

  void Send(const Ev& ev) {
    ingest::Event e;
    e.event_id = ev.id;
    e.user_id = ev.user;
    e.referrer_id = ev.referrer;
    e.type = ev.type;
    e.ts_ms = ev.ts;
    e.amount_fen = ev.fen;
    e.community = ev.community;
    eval_.Add(e);
  }
  void Send(EventType type, const std::string& user, int64_t ts, int64_t fen = 0,
            const std::string& referrer = "", bool community = false) {
    Send(Ev{"e" + std::to_string(next_id_++), user, referrer, type, ts, fen, community});
  }
  void Msg(const std::string& user, int64_t ts) { Send(EventType::kMessage, user, ts); }
  void Join(const std::string& user, int64_t ts, const std::string& referrer = "") {
    Send(EventType::kJoin, user, ts, 0, referrer);
  }
  void Leave(const std::string& user, int64_t ts) { Send(EventType::kLeave, user, ts); }
  void Order(const std::string& user, int64_t ts, int64_t fen, bool community = false) {
    Send(EventType::kOrder, user, ts, fen, "", community);
  }
  void Refund(const std::string& user, int64_t ts, int64_t fen) {
    Send(EventType::kRefund, user, ts, fen);
  }

  Profile P(const std::string& user) const {
    auto all = eval_.Profiles();
    auto it = all.find(user);
    EXPECT_NE(it, all.end()) << "no profile for " << user;
    return it == all.end() ? Profile{} : it->second;
  }
  std::string Tier(const std::string& user) const { return P(user).tier; }
  Kpis K() const { return eval_.ComputeKpis(); }
  BatchEvaluator& eval() { return eval_; }

 private:
  BatchEvaluator eval_;
  int next_id_ = 0;
};

std::map<std::string, int64_t> Tiers(int64_t left, int64_t high_value, int64_t new_, int64_t active,
                                     int64_t dormant, int64_t regular) {
  return {{"left", left},     {"high_value", high_value}, {"new", new_},
          {"active", active}, {"dormant", dormant},       {"regular", regular}};
}

// ---------------------------------------------------------------- empty

TEST(BatchEval, NoEventsMeansNoProfilesNullAsOfAndAllSixTierKeysAtZero) {
  Feed f;
  f.eval().AddRejected(2);
  EXPECT_TRUE(f.eval().Profiles().empty());
  Kpis k = f.K();
  EXPECT_FALSE(k.as_of.has_value());
  EXPECT_EQ(k.tiers, Tiers(0, 0, 0, 0, 0, 0));
  EXPECT_EQ(k.users_total, 0);
  EXPECT_EQ(k.members, 0);
  EXPECT_EQ(k.monthly_active_rate, 0.0);
  EXPECT_EQ(k.aov_30d, 0.0);
  EXPECT_EQ(k.repurchase_rate, 0.0);
  EXPECT_EQ(k.community_order_share, 0.0);
  EXPECT_FALSE(k.referral_growth.has_value());
  EXPECT_EQ(k.events_accepted, 0);
  EXPECT_EQ(k.events_rejected, 2);
}

// ---------------------------------------------------------------- days

TEST(BatchEval, DayBoundaryIsLocalMidnightAtPlus0800) {
  EXPECT_EQ(DayOf(Rfc("2026-11-23T15:59:59.999Z"), kOffset), kD - 1);
  EXPECT_EQ(DayOf(Rfc("2026-11-23T16:00:00.000Z"), kOffset), kD);
  EXPECT_EQ(At(0, 0), Rfc("2026-11-23T16:00:00.000Z"));
}

TEST(BatchEval, SevenDayWindowStartsAtLocalMidnightOfDayDMinus6) {
  Feed f;
  // T = 2026-11-24T16:00:00.000Z, local 2026-11-25 00:00 (D = kD + 1).
  f.Msg("clock", Rfc("2026-11-24T16:00:00.000Z"));
  f.Join("in", At(60));
  f.Join("out", At(60));
  for (int i = 0; i < 3; ++i) {
    f.Msg("in", Rfc("2026-11-18T16:00:00.000Z"));   // local 11-19 00:00 = D-6
    f.Msg("out", Rfc("2026-11-18T15:59:59.999Z"));  // local 11-18 23:59:59.999 = D-7
  }
  Profile in = f.P("in"), out = f.P("out");
  EXPECT_EQ(in.interactions_7d, 3);
  EXPECT_EQ(in.interactions_30d, 3);
  EXPECT_EQ(in.tier, "active");
  EXPECT_EQ(out.interactions_7d, 0);
  EXPECT_EQ(out.interactions_30d, 3);
  EXPECT_EQ(out.tier, "dormant");
}

TEST(BatchEval, DauAndMauWindowEdgesFallOnLocalMidnight) {
  Feed f;
  // T = local 2026-11-25 00:00:00.000 (D = kD + 1).
  f.Msg("a", Rfc("2026-11-24T16:00:00.000Z"));  // day D
  f.Msg("b", Rfc("2026-11-24T15:59:59.999Z"));  // day D-1
  f.Msg("c", Rfc("2026-10-26T16:00:00.000Z"));  // local 10-27 00:00 = D-29
  f.Msg("d", Rfc("2026-10-26T15:59:59.999Z"));  // local 10-26 23:59:59.999 = D-30
  Kpis k = f.K();
  EXPECT_EQ(k.as_of, Rfc("2026-11-24T16:00:00.000Z"));
  EXPECT_EQ(k.members, 4);
  EXPECT_EQ(k.dau, 1);
  EXPECT_EQ(k.mau, 3);
  EXPECT_DOUBLE_EQ(k.monthly_active_rate, 0.75);
  // joined_at falls back to the first own event: a, b, c joined in the window.
  EXPECT_EQ(k.new_members_30d, 3);
  EXPECT_EQ(f.Tier("c"), "new");      // D - (D-29) = 29 < 30
  EXPECT_EQ(f.Tier("d"), "dormant");  // D - (D-30) = 30
  EXPECT_EQ(k.tiers, Tiers(0, 0, 3, 0, 1, 0));
}

TEST(BatchEval, UtcOffsetIsConfigurable) {
  Feed f(Thresholds{}, /*offset=*/0);
  f.Msg("clock", Rfc("2026-11-24T00:00:00.000Z"));
  f.Msg("late", Rfc("2026-11-23T23:59:59.999Z"));  // the day before, in UTC
  f.Msg("early", Rfc("2026-11-24T00:00:00.000Z"));
  Kpis k = f.K();
  EXPECT_EQ(k.dau, 2);  // clock and early; under +08:00 all three would share a day
  EXPECT_EQ(k.mau, 3);
}

// ---------------------------------------------------------------- tiers

TEST(BatchEval, LeftWhenTheLatestMembershipEventIsALeaveEvenIfActive) {
  Feed f;
  f.Join("u", At(60));
  f.Leave("u", At(10));
  for (int i = 0; i < 3; ++i) f.Msg("u", At(0));
  Profile p = f.P("u");
  EXPECT_FALSE(p.member);
  EXPECT_EQ(p.interactions_7d, 3);
  EXPECT_EQ(p.tier, "left");
}

TEST(BatchEval, RejoiningAfterALeaveMakesAMemberAndKeepsTheFirstJoin) {
  Feed f;
  f.Join("u", At(60));
  f.Leave("u", At(10));
  f.Join("u", At(5));
  f.Msg("clock", At(0));
  Profile p = f.P("u");
  EXPECT_TRUE(p.member);
  EXPECT_EQ(p.joined_at, At(60));
  EXPECT_EQ(p.tier, "dormant");
}

TEST(BatchEval, MembershipIsDecidedByEventTimeNotArrivalOrder) {
  Feed f;
  f.Leave("u", At(10));  // arrives first, happened last
  f.Join("u", At(20));
  f.Join("v", At(10));  // arrives first, happened last
  f.Leave("v", At(20));
  EXPECT_FALSE(f.P("u").member);
  EXPECT_TRUE(f.P("v").member);
}

TEST(BatchEval, JoinAndLeaveAtTheSameTsMeansLeftWhicheverArrivesFirst) {
  Feed f;
  f.Join("jl", At(5));
  f.Leave("jl", At(5));
  f.Leave("lj", At(5));
  f.Join("lj", At(5));
  EXPECT_FALSE(f.P("jl").member);
  EXPECT_EQ(f.Tier("jl"), "left");
  EXPECT_FALSE(f.P("lj").member);
  EXPECT_EQ(f.Tier("lj"), "left");
  EXPECT_EQ(f.K().members, 0);
  EXPECT_EQ(f.K().tiers, Tiers(2, 0, 0, 0, 0, 0));
}

TEST(BatchEval, LeaveOnlyUserIsLeftAndJoinedAtHerLeave) {
  Feed f;
  f.Leave("u", At(3));
  Profile p = f.P("u");
  EXPECT_FALSE(p.member);
  EXPECT_EQ(p.joined_at, At(3));
  EXPECT_FALSE(p.last_active.has_value());
  EXPECT_EQ(p.tier, "left");
}

TEST(BatchEval, HighValueAtExactlyFiveHundredYuanAndThreeRepeatOrders) {
  Feed f;
  f.Join("u", At(40));
  for (int i = 0; i < 4; ++i) f.Order("u", At(1), 12500);
  f.Msg("clock", At(0));
  Profile p = f.P("u");
  EXPECT_EQ(p.spend_30d_fen, 50000);
  EXPECT_EQ(p.orders_total, 4);
  EXPECT_EQ(p.repeat_orders, 3);
  EXPECT_EQ(p.tier, "high_value");
}

TEST(BatchEval, NotHighValueOneFenShortOfTheSpendThreshold) {
  Feed f;
  f.Join("u", At(40));
  for (int i = 0; i < 3; ++i) f.Order("u", At(1), 12500);
  f.Order("u", At(1), 12499);
  f.Msg("clock", At(0));
  EXPECT_EQ(f.P("u").spend_30d_fen, 49999);
  EXPECT_EQ(f.Tier("u"), "dormant");
}

TEST(BatchEval, NotHighValueWithOnlyTwoRepeatOrders) {
  Feed f;
  f.Join("u", At(40));
  for (int i = 0; i < 3; ++i) f.Order("u", At(1), 30000);
  f.Msg("clock", At(0));
  EXPECT_EQ(f.P("u").repeat_orders, 2);
  EXPECT_EQ(f.P("u").spend_30d_fen, 90000);
  EXPECT_EQ(f.Tier("u"), "dormant");
}

TEST(BatchEval, HighValueSpendCountsOnlyTheLast30Days) {
  Feed f;
  f.Join("u", At(40));
  f.Order("u", At(30, kLastMs), 12500);                        // day D-30: outside
  for (int i = 0; i < 3; ++i) f.Order("u", At(29, 0), 12500);  // day D-29: inside
  f.Msg("clock", At(0));
  Profile p = f.P("u");
  EXPECT_EQ(p.spend_30d_fen, 37500);
  EXPECT_EQ(p.spend_total_fen, 50000);
  EXPECT_EQ(p.orders_30d, 3);
  EXPECT_EQ(p.orders_total, 4);
  EXPECT_EQ(p.repeat_orders, 3);
  EXPECT_EQ(p.tier, "dormant");
}

TEST(BatchEval, ARefundInTheWindowCanDropAUserOutOfHighValue) {
  Feed f;
  f.Join("u", At(40));
  for (int i = 0; i < 4; ++i) f.Order("u", At(2), 12500);
  f.Refund("u", At(1), 1);
  f.Msg("clock", At(0));
  EXPECT_EQ(f.P("u").spend_30d_fen, 49999);
  EXPECT_EQ(f.Tier("u"), "dormant");
}

TEST(BatchEval, HighValueTakesPrecedenceOverNew) {
  Feed f;
  f.Join("u", At(0));
  for (int i = 0; i < 4; ++i) f.Order("u", At(0), 20000);
  EXPECT_EQ(f.Tier("u"), "high_value");
}

TEST(BatchEval, NewWhileFewerThan30DaysSinceJoining) {
  Feed f;
  f.Join("in", At(29, 0));         // day D-29
  f.Join("out", At(30, kLastMs));  // day D-30
  f.Msg("clock", At(0, kLastMs));
  EXPECT_EQ(f.Tier("in"), "new");
  EXPECT_EQ(f.Tier("out"), "dormant");
}

TEST(BatchEval, NewTakesPrecedenceOverActive) {
  Feed f;
  f.Join("u", At(0));
  for (int i = 0; i < 3; ++i) f.Msg("u", At(0));
  EXPECT_EQ(f.Tier("u"), "new");
}

TEST(BatchEval, ActiveAtThreeInteractionsOfAnyKindInTheLast7Days) {
  Feed f;
  f.Join("u", At(60));
  f.Send(EventType::kReaction, "u", At(6, 0));
  f.Send(EventType::kCheckin, "u", At(3));
  f.Send(EventType::kShare, "u", At(0));
  Profile p = f.P("u");
  EXPECT_EQ(p.interactions_7d, 3);
  EXPECT_EQ(p.tier, "active");
}

TEST(BatchEval, RegularWithOneOrTwoInteractionsInTheLast7Days) {
  Feed f;
  f.Join("u", At(60));
  f.Msg("u", At(6, 0));
  f.Msg("u", At(0));
  f.Msg("u", At(7, kLastMs));  // day D-7: outside the 7-day window
  Profile p = f.P("u");
  EXPECT_EQ(p.interactions_7d, 2);
  EXPECT_EQ(p.interactions_30d, 3);
  EXPECT_EQ(p.tier, "regular");
}

TEST(BatchEval, DormantWithNoInteractionsInTheLast7DaysEvenWithOrders) {
  Feed f;
  f.Join("u", At(60));
  for (int i = 0; i < 5; ++i) f.Order("u", At(0), 100);
  Profile p = f.P("u");
  EXPECT_EQ(p.interactions_7d, 0);
  EXPECT_EQ(p.last_active, At(0));
  EXPECT_EQ(p.tier, "dormant");
}

TEST(BatchEval, DormantAfterSevenQuietDays) {
  Feed f;
  f.Join("u", At(60));
  for (int i = 0; i < 3; ++i) f.Msg("u", At(7));
  f.Msg("clock", At(1));  // u's messages are on D-6
  EXPECT_EQ(f.Tier("u"), "active");
  f.Msg("clock", At(0));  // now on D-7, though u sent nothing
  EXPECT_EQ(f.P("u").interactions_7d, 0);
  EXPECT_EQ(f.P("u").interactions_30d, 3);
  EXPECT_EQ(f.Tier("u"), "dormant");
}

TEST(BatchEval, StopsBeingNewOnDay30) {
  Feed f;
  f.Join("u", At(30));
  f.Msg("clock", At(1));
  EXPECT_EQ(f.Tier("u"), "new");
  f.Msg("clock", At(0));
  EXPECT_EQ(f.Tier("u"), "dormant");
}

TEST(BatchEval, ThresholdsAreConfigurable) {
  Thresholds t;
  t.high_value_spend_fen = 1000;
  t.high_value_repeat_orders = 1;
  t.new_days = 7;
  t.active_interactions_7d = 1;
  Feed f(t);
  f.Join("hv", At(10));
  f.Order("hv", At(1), 500);
  f.Order("hv", At(1), 500);
  f.Join("act", At(10));
  f.Msg("act", At(0));
  f.Join("nw", At(6));
  f.Join("old", At(7));
  EXPECT_EQ(f.Tier("hv"), "high_value");
  EXPECT_EQ(f.Tier("act"), "active");
  EXPECT_EQ(f.Tier("nw"), "new");
  EXPECT_EQ(f.Tier("old"), "dormant");
}

// ---------------------------------------------------------------- profile fields

TEST(BatchEval, JoinedAtIsTheFirstOwnJoinEvenIfOtherEventsCameEarlier) {
  Feed f;
  f.Msg("u", At(50));
  f.Join("u", At(40));
  f.Join("u", At(45));
  EXPECT_EQ(f.P("u").joined_at, At(45));
}

TEST(BatchEval, JoinedAtFallsBackToTheFirstOwnEventOfAnyType) {
  Feed f;
  f.Msg("u", At(3));
  f.Refund("u", At(8), 100);
  f.Leave("u", At(1));
  EXPECT_EQ(f.P("u").joined_at, At(8));
}

TEST(BatchEval, LastActiveIsTheLatestInteractionOrOrderNotJoinOrRefund) {
  Feed f;
  f.Join("u", At(40));
  f.Msg("u", At(20));
  f.Order("u", At(10), 100);
  f.Refund("u", At(5), 100);
  f.Join("u", At(4));
  f.Leave("u", At(3));
  f.Join("u", At(2));
  EXPECT_EQ(f.P("u").last_active, At(10));
  f.Join("v", At(1));
  EXPECT_FALSE(f.P("v").last_active.has_value());
}

TEST(BatchEval, PointsPerTypeFloorYuanAndReferralBonus) {
  Feed f;
  f.Msg("u", At(100));                       // +1 (points are all-time)
  f.Send(EventType::kReaction, "u", At(1));  // +1
  f.Send(EventType::kCheckin, "u", At(1));   // +2
  f.Send(EventType::kShare, "u", At(1));     // +3
  f.Order("u", At(1), 1299);                 // +12
  f.Order("u", At(1), 99);                   // +0
  f.Refund("u", At(1), 550);                 // -5
  f.Join("v", At(0), "u");                   // +10 for u
  Profile p = f.P("u");
  EXPECT_EQ(p.points, 24);
  EXPECT_EQ(p.referrals, 1);
  EXPECT_EQ(f.P("v").points, 0);
}

TEST(BatchEval, RefundCanMakeSpendNegative) {
  Feed f;
  f.Join("b", At(60));
  f.Order("b", At(40), 10000);  // outside the 30-day window
  f.Refund("b", At(1), 6050);
  Profile p = f.P("b");
  EXPECT_EQ(p.spend_30d_fen, -6050);
  EXPECT_EQ(p.spend_total_fen, 3950);
  EXPECT_EQ(p.points, 100 - 60);
  EXPECT_EQ(p.orders_total, 1);
  EXPECT_EQ(p.orders_30d, 0);
  EXPECT_EQ(p.repeat_orders, 0);
  EXPECT_EQ(p.last_active, At(40));
  EXPECT_EQ(p.tier, "dormant");
  Kpis k = f.K();
  EXPECT_EQ(k.gmv_30d_fen, 0);
  EXPECT_EQ(k.refunds_30d_fen, 6050);
  EXPECT_EQ(k.net_gmv_30d_fen, -6050);
  EXPECT_EQ(k.orders_30d, 0);
  EXPECT_EQ(k.aov_30d, 0.0);
  EXPECT_EQ(k.community_order_share, 0.0);
  EXPECT_EQ(k.buyers_total, 1);
  EXPECT_EQ(k.repeat_buyers_total, 0);
  EXPECT_EQ(k.repurchase_rate, 0.0);
  EXPECT_EQ(k.mau, 0);
  EXPECT_EQ(k.monthly_active_rate, 0.0);
}

TEST(BatchEval, ReferrerOnlyProfileIsAMemberJoinedAtTheFirstJoinNamingHer) {
  Feed f;
  f.Join("u2", At(3), "ref");
  f.Join("u3", At(5), "ref");
  f.Msg("clock", At(0));
  Profile p = f.P("ref");
  EXPECT_EQ(p.user_id, "ref");
  EXPECT_TRUE(p.member);
  EXPECT_EQ(p.joined_at, At(5));
  EXPECT_FALSE(p.last_active.has_value());
  EXPECT_EQ(p.referrals, 2);
  EXPECT_EQ(p.points, 20);
  EXPECT_EQ(p.interactions_30d, 0);
  EXPECT_EQ(p.orders_total, 0);
  EXPECT_EQ(p.tier, "new");
  Kpis k = f.K();
  EXPECT_EQ(k.users_total, 4);
  EXPECT_EQ(k.members, 4);
  EXPECT_EQ(k.new_members_30d, 4);
  EXPECT_EQ(k.mau, 1);  // only clock: joins are not activity
  EXPECT_EQ(k.referred_joins_30d, 2);
}

TEST(BatchEval, ReferrerOnlyProfileNamedLongAgoIsDormant) {
  Feed f;
  f.Join("u2", At(40), "ref");
  f.Msg("clock", At(0));
  EXPECT_EQ(f.P("ref").joined_at, At(40));
  EXPECT_EQ(f.Tier("ref"), "dormant");
}

TEST(BatchEval, OwnEventsOutrankReferringJoinsForJoinedAt) {
  Feed f;
  f.Join("u2", At(10), "r");
  f.Msg("r", At(1));
  Profile p = f.P("r");
  EXPECT_EQ(p.joined_at, At(1));
  EXPECT_EQ(p.referrals, 1);
  EXPECT_EQ(p.points, 11);
}

TEST(BatchEval, SelfReferralCreditsNothing) {
  Feed f;
  f.Join("s", At(2), "s");
  Profile p = f.P("s");
  EXPECT_EQ(p.referrals, 0);
  EXPECT_EQ(p.points, 0);
  Kpis k = f.K();
  EXPECT_EQ(k.users_total, 1);
  EXPECT_EQ(k.referred_joins_30d, 0);
  EXPECT_EQ(k.referred_joins_prev_30d, 0);
  EXPECT_FALSE(k.referral_growth.has_value());
}

// ---------------------------------------------------------------- duplicates

TEST(BatchEval, DuplicateEventIdIsCountedAndChangesNothing) {
  Feed f;
  f.Send(Ev{"e1", "u", "", EventType::kMessage, At(1), 0, false});
  f.Send(Ev{"e1", "u", "", EventType::kOrder, At(0), 100000, true});  // same id, other content
  f.Send(Ev{"e1", "w", "", EventType::kMessage, At(0), 0, false});
  Kpis k = f.K();
  EXPECT_EQ(k.events_accepted, 1);
  EXPECT_EQ(k.events_duplicate, 2);
  EXPECT_EQ(k.as_of, At(1));    // a duplicate does not move T
  EXPECT_EQ(k.users_total, 1);  // nor create a profile
  EXPECT_EQ(k.orders_30d, 0);
  Profile p = f.P("u");
  EXPECT_EQ(p.points, 1);
  EXPECT_EQ(p.orders_total, 0);
}

TEST(BatchEval, DuplicatesAreRecognisedWithNoTimeHorizon) {
  Feed f;
  f.Send(Ev{"old", "u", "", EventType::kMessage, At(300), 0, false});
  f.Send(Ev{"new", "u", "", EventType::kMessage, At(0), 0, false});
  f.Send(Ev{"old", "u", "", EventType::kMessage, At(0), 0, false});
  Kpis k = f.K();
  EXPECT_EQ(k.events_accepted, 2);
  EXPECT_EQ(k.events_duplicate, 1);
  EXPECT_EQ(f.P("u").interactions_7d, 1);
}

TEST(BatchEval, DuplicateJoinDoesNotCreditTheReferrerTwice) {
  Feed f;
  f.Send(Ev{"j", "u", "r", EventType::kJoin, At(1), 0, false});
  f.Send(Ev{"j", "u", "r", EventType::kJoin, At(1), 0, false});
  EXPECT_EQ(f.P("r").referrals, 1);
  EXPECT_EQ(f.P("r").points, 10);
  EXPECT_EQ(f.K().referred_joins_30d, 1);
}

TEST(BatchEval, RejectedLinesAreOnlyCounted) {
  Feed f;
  f.Msg("u", At(0));
  f.eval().AddRejected(3);
  f.eval().AddRejected(2);
  Kpis k = f.K();
  EXPECT_EQ(k.events_rejected, 5);
  EXPECT_EQ(k.events_accepted, 1);
  EXPECT_EQ(k.events_duplicate, 0);
  EXPECT_EQ(k.users_total, 1);
}

TEST(BatchEval, InternalReferralCreditEventsAreIgnored) {
  Feed f;
  f.Send(Ev{"x", "r", "u", EventType::kReferralCredit, At(0), 0, false});
  EXPECT_TRUE(f.eval().Profiles().empty());
  EXPECT_EQ(f.K().events_accepted, 0);
}

// ---------------------------------------------------------------- KPIs

TEST(BatchEval, ReferralWindowsAreDaysDMinus29ToDAndDMinus59ToDMinus30) {
  Feed f;
  f.Join("a", At(0), "r");
  f.Join("b", At(10), "r");
  f.Join("c", At(29, 0), "r");        // last 30 days
  f.Join("d", At(30, kLastMs), "r");  // previous 30 days
  f.Join("e", At(59, 0), "r");        // previous 30 days
  f.Join("g", At(60, kLastMs), "r");  // neither
  f.Join("self", At(1), "self");      // self: not a referred join
  f.Join("plain", At(1));             // no referrer
  Kpis k = f.K();
  EXPECT_EQ(k.referred_joins_30d, 3);
  EXPECT_EQ(k.referred_joins_prev_30d, 2);
  ASSERT_TRUE(k.referral_growth.has_value());
  EXPECT_DOUBLE_EQ(*k.referral_growth, 0.5);
  EXPECT_EQ(f.P("r").referrals, 6);
  EXPECT_EQ(f.P("r").points, 60);
}

TEST(BatchEval, ReferralGrowthIsNullWhenThePreviousWindowHasNoReferredJoins) {
  Feed f;
  f.Join("a", At(0), "r");
  f.Join("b", At(29, 0), "r");
  f.Join("c", At(60, kLastMs), "r");  // before the previous window
  Kpis k = f.K();
  EXPECT_EQ(k.referred_joins_30d, 2);
  EXPECT_EQ(k.referred_joins_prev_30d, 0);
  EXPECT_FALSE(k.referral_growth.has_value());
}

TEST(BatchEval, ReferralGrowthCanBeNegative) {
  Feed f;
  f.Join("a", At(0), "r");
  for (int i = 0; i < 4; ++i) f.Join("p" + std::to_string(i), At(40), "r");
  Kpis k = f.K();
  ASSERT_TRUE(k.referral_growth.has_value());
  EXPECT_DOUBLE_EQ(*k.referral_growth, -0.75);
}

TEST(BatchEval, KpisOfASmallCommunity) {
  Feed f;
  f.Join("a", At(40));
  f.Order("a", At(1), 10000, /*community=*/true);
  f.Order("a", At(2), 5000);
  f.Order("a", At(35), 3000, true);  // outside the 30-day window
  f.Join("b", At(10));
  f.Order("b", At(0), 2550, true);
  f.Join("c", At(20));
  f.Order("c", At(20), 1000);
  f.Leave("c", At(3));
  f.Join("d", At(5), "a");
  f.Msg("d", At(0));

  Kpis k = f.K();
  EXPECT_EQ(k.as_of, At(0));
  EXPECT_EQ(k.events_accepted, 11);
  EXPECT_EQ(k.users_total, 4);
  EXPECT_EQ(k.members, 3);
  EXPECT_EQ(k.tiers, Tiers(/*left=*/1, 0, /*new=*/2, 0, /*dormant=*/1, 0));
  EXPECT_EQ(k.mau, 3);  // a, b, d (c has left)
  EXPECT_EQ(k.dau, 2);  // b, d
  EXPECT_DOUBLE_EQ(k.monthly_active_rate, 1.0);
  EXPECT_EQ(k.new_members_30d, 2);  // b, d; c joined in the window but has left
  EXPECT_EQ(k.orders_30d, 4);
  EXPECT_EQ(k.community_orders_30d, 2);
  EXPECT_DOUBLE_EQ(k.community_order_share, 0.5);
  EXPECT_EQ(k.gmv_30d_fen, 18550);
  EXPECT_EQ(k.refunds_30d_fen, 0);
  EXPECT_EQ(k.net_gmv_30d_fen, 18550);
  EXPECT_DOUBLE_EQ(k.aov_30d, 46.375);  // yuan
  EXPECT_EQ(k.buyers_total, 3);         // a, b, c: left users count
  EXPECT_EQ(k.repeat_buyers_total, 1);  // a
  EXPECT_DOUBLE_EQ(k.repurchase_rate, 1.0 / 3.0);
  EXPECT_EQ(k.referred_joins_30d, 1);
  EXPECT_FALSE(k.referral_growth.has_value());

  Profile a = f.P("a");
  EXPECT_EQ(a.points, 100 + 50 + 30 + 10);
  EXPECT_EQ(a.orders_total, 3);
  EXPECT_EQ(a.orders_30d, 2);
  EXPECT_EQ(a.repeat_orders, 2);
  EXPECT_EQ(a.spend_30d_fen, 15000);
  EXPECT_EQ(a.spend_total_fen, 18000);
  EXPECT_EQ(a.tier, "dormant");
}

TEST(BatchEval, ProfilesDoNotDependOnArrivalOrder) {
  std::vector<Ev> evs = {
      {"1", "a", "", EventType::kJoin, At(40), 0, false},
      {"2", "a", "", EventType::kLeave, At(20), 0, false},
      {"3", "a", "", EventType::kJoin, At(20), 0, false},
      {"4", "b", "a", EventType::kJoin, At(12), 0, false},
      {"5", "b", "", EventType::kOrder, At(3), 20000, true},
      {"6", "b", "", EventType::kRefund, At(2), 350, false},
      {"7", "b", "", EventType::kShare, At(1), 0, false},
      {"8", "c", "z", EventType::kJoin, At(45), 0, false},
      {"9", "a", "", EventType::kCheckin, At(0), 0, false},
      {"4", "q", "", EventType::kOrder, At(0), 99999, false},  // duplicate of "4"
  };
  auto run = [](const std::vector<Ev>& in) {
    Feed f;
    for (const Ev& e : in) f.Send(e);
    return f.eval().Profiles();
  };
  auto forward = run(evs);
  std::vector<Ev> backward(evs.rbegin(), evs.rend());
  // Keep the duplicate after the event it duplicates.
  std::rotate(backward.begin(), backward.begin() + 1, backward.end());
  auto back = run(backward);
  ASSERT_EQ(forward.size(), 4u);  // a, b, c, z
  ASSERT_EQ(back.size(), 4u);
  for (const auto& [user, p] : forward) {
    const Profile& q = back.at(user);
    EXPECT_EQ(p.member, q.member) << user;
    EXPECT_EQ(p.joined_at, q.joined_at) << user;
    EXPECT_EQ(p.last_active, q.last_active) << user;
    EXPECT_EQ(p.points, q.points) << user;
    EXPECT_EQ(p.spend_30d_fen, q.spend_30d_fen) << user;
    EXPECT_EQ(p.tier, q.tier) << user;
  }
  EXPECT_EQ(forward.at("a").tier, "left");  // leave and join at the same ts
  EXPECT_EQ(forward.at("a").points, 12);    // checkin 2 + referral 10
  EXPECT_EQ(forward.at("b").tier, "new");
  EXPECT_EQ(forward.at("b").points, 200 - 3 + 3);
  EXPECT_EQ(forward.at("b").spend_30d_fen, 19650);
  EXPECT_EQ(forward.at("z").joined_at, At(45));
  EXPECT_EQ(forward.at("z").tier, "dormant");
}

}  // namespace
}  // namespace tierstream::verify
