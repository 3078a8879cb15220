#include "state/explain.h"

#include <gtest/gtest.h>

#include <array>
#include <random>

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

void Apply(UserState* s, EventType type, int64_t ts, int64_t fen = 0, int32_t today = kToday) {
  Event e;
  e.event_id = "e";
  e.user_id = "u";
  e.type = type;
  e.ts_ms = ts;
  e.amount_fen = fen;
  ApplyOwnEvent(s, e, kOffset, today);
}

Tier TierOn(const UserState& s, int32_t day, const Config& c) {
  return EvaluateTier(s, ComputeWindows(s, day), day, c.utc_offset_ms, c.rules);
}

const Reach* Find(const Explanation& x, Tier t) {
  for (const Reach& r : x.to_reach) {
    if (r.tier == t) return &r;
  }
  return nullptr;
}

class ExplainTest : public ::testing::Test {
 protected:
  void Own(EventType type, int64_t ts, int64_t fen = 0) { Apply(&s_, type, ts, fen); }
  Explanation Now() { return Explain(s_, kToday, config_); }
  // The promise of next_change: her tier is the old one on the day before
  // and next_change.tier on its day, as EvaluateTier says.
  void ExpectExact(const Explanation& x) {
    ASSERT_TRUE(x.next_change.has_value());
    const NextChange& n = *x.next_change;
    EXPECT_EQ(n.at, FirstMsOfDay(n.day, kOffset));
    EXPECT_EQ(DayOf(n.at, kOffset), n.day);
    EXPECT_EQ(DayOf(n.at - 1, kOffset), n.day - 1);
    EXPECT_EQ(TierOn(s_, n.day - 1, config_), x.tier);
    EXPECT_EQ(TierOn(s_, n.day, config_), n.tier);
  }

  UserState s_;
  Config config_;
};

TEST_F(ExplainTest, RulesShowHerValuesAndThresholdsInEvaluationOrder) {
  Own(EventType::kJoin, At(40));
  Own(EventType::kMessage, At(1));
  Own(EventType::kMessage, At(2));
  Own(EventType::kOrder, At(3), 12350);
  Own(EventType::kOrder, At(4), 50000);
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kRegular);
  ASSERT_EQ(x.rules.size(), 6u);
  for (int i = 0; i < kTierCount; ++i) EXPECT_EQ(x.rules[i].tier, static_cast<Tier>(i));
  const RuleCheck& left = x.rules[0];
  EXPECT_FALSE(left.holds);
  ASSERT_EQ(left.values.size(), 1u);
  EXPECT_EQ(left.values[0].name, "member");
  EXPECT_EQ(left.values[0].value, 1);
  const RuleCheck& hv = x.rules[1];
  EXPECT_FALSE(hv.holds);
  ASSERT_EQ(hv.values.size(), 2u);
  EXPECT_EQ(hv.values[0].name, "spend_30d");
  EXPECT_EQ(hv.values[0].unit, Unit::kFen);
  EXPECT_EQ(hv.values[0].value, 62350);
  EXPECT_EQ(hv.values[1].name, "repeat_orders");
  EXPECT_EQ(hv.values[1].value, 1);
  EXPECT_EQ(hv.thresholds[0].value, 50000);
  EXPECT_EQ(hv.thresholds[1].value, 3);
  const RuleCheck& fresh = x.rules[2];
  EXPECT_FALSE(fresh.holds);
  EXPECT_EQ(fresh.values[0].name, "joined_at");
  EXPECT_EQ(fresh.values[0].value, At(40));
  EXPECT_EQ(fresh.values[1].name, "days_since_joined");
  EXPECT_EQ(fresh.values[1].value, 40);
  EXPECT_EQ(fresh.thresholds[0].value, 30);
  EXPECT_FALSE(x.rules[3].holds);  // active: 2 < 3
  EXPECT_EQ(x.rules[3].values[0].value, 2);
  EXPECT_FALSE(x.rules[4].holds);  // dormant: 2 != 0
  EXPECT_TRUE(x.rules[5].holds);
  EXPECT_TRUE(x.rules[5].values.empty());
}

TEST_F(ExplainTest, NewEndsOnDayThirtyAfterJoinedAtsDay) {
  Own(EventType::kJoin, At(10, kMsPerDay - 1));  // the last ms of 2025-11-14
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kNew);
  ASSERT_TRUE(x.next_change.has_value());
  EXPECT_EQ(x.next_change->day, kToday - 10 + 30);
  EXPECT_EQ(x.next_change->at, At(-20, 0));
  EXPECT_EQ(x.next_change->tier, Tier::kDormant);
  EXPECT_EQ(x.next_change->cause, NextChangeCause::kNewEnds);
  EXPECT_EQ(x.next_change->because, "30 days since she joined on 2025-11-14");
  ExpectExact(x);
}

TEST_F(ExplainTest, NewEndsByTheConfiguredNumberOfDays) {
  config_.rules.new_days = 7;
  Own(EventType::kJoin, At(3));
  Own(EventType::kMessage, At(0));
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kNew);
  ASSERT_TRUE(x.next_change.has_value());
  EXPECT_EQ(x.next_change->day, kToday + 4);
  EXPECT_EQ(x.next_change->tier, Tier::kRegular);  // her message is still in the window
  EXPECT_EQ(x.next_change->because, "7 days since she joined on 2025-11-21");
  ExpectExact(x);
}

TEST_F(ExplainTest, DormantWhenHerLastInteractionLeavesTheSevenDayWindow) {
  Own(EventType::kJoin, At(60));
  Own(EventType::kMessage, At(2));
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kRegular);
  ASSERT_TRUE(x.next_change.has_value());
  EXPECT_EQ(x.next_change->day, kToday + 5);
  EXPECT_EQ(x.next_change->tier, Tier::kDormant);
  EXPECT_EQ(x.next_change->cause, NextChangeCause::kLastInteractionsLeave);
  EXPECT_EQ(x.next_change->event_day, kToday - 2);
  EXPECT_EQ(x.next_change->because, "her last interaction, of 2025-11-22, leaves the 7-day window");
  ExpectExact(x);
}

TEST_F(ExplainTest, ActiveBecomesRegularWhenAnInteractionLeaves) {
  Own(EventType::kJoin, At(60));
  Own(EventType::kMessage, At(5));
  Own(EventType::kMessage, At(1));
  Own(EventType::kShare, At(1));
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kActive);
  ASSERT_TRUE(x.next_change.has_value());
  EXPECT_EQ(x.next_change->day, kToday + 2);
  EXPECT_EQ(x.next_change->tier, Tier::kRegular);
  EXPECT_EQ(x.next_change->cause, NextChangeCause::kInteractionsLeave);
  EXPECT_EQ(x.next_change->because,
            "her interaction of 2025-11-19 leaves the 7-day window: 2 remain, fewer than 3");
  ExpectExact(x);

  // One left in the window.
  UserState one;
  Apply(&one, EventType::kJoin, At(60));
  Apply(&one, EventType::kMessage, At(5));
  Apply(&one, EventType::kMessage, At(5));
  Apply(&one, EventType::kMessage, At(1));
  const Explanation y = Explain(one, kToday, config_);
  ASSERT_TRUE(y.next_change.has_value());
  EXPECT_EQ(y.next_change->because,
            "her interactions of 2025-11-19 leave the 7-day window: 1 remains, fewer than 3");
}

TEST_F(ExplainTest, KeepsLookingPastWindowEdgesThatChangeNothing) {
  // Five interactions: one leaves on D+1 (four remain: still active), the
  // rest on D+6, which leaves none.
  Own(EventType::kJoin, At(60));
  Own(EventType::kMessage, At(6));
  for (int i = 0; i < 4; ++i) Own(EventType::kReaction, At(1));
  Own(EventType::kOrder, At(2), 100);  // its spend leaves on D+28: no change either
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kActive);
  EXPECT_EQ(NextCheckDay(s_, kToday, kOffset, config_.rules), kToday + 1);
  ASSERT_TRUE(x.next_change.has_value());
  EXPECT_EQ(x.next_change->day, kToday + 6);
  EXPECT_EQ(x.next_change->tier, Tier::kDormant);
  EXPECT_EQ(x.next_change->cause, NextChangeCause::kLastInteractionsLeave);
  EXPECT_EQ(x.next_change->because, "her last interactions, of 2025-11-23, leave the 7-day window");
  ExpectExact(x);
}

TEST_F(ExplainTest, HighValueIsLostWhenAnOrderLeavesTheThirtyDayWindow) {
  Own(EventType::kJoin, At(100));
  Own(EventType::kOrder, At(25), 20000);
  Own(EventType::kOrder, At(10), 15000);
  Own(EventType::kOrder, At(5), 10000);
  Own(EventType::kOrder, At(1), 10000);
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kHighValue);
  ASSERT_TRUE(x.next_change.has_value());
  EXPECT_EQ(x.next_change->day, kToday + 5);
  EXPECT_EQ(x.next_change->tier, Tier::kDormant);
  EXPECT_EQ(x.next_change->cause, NextChangeCause::kOrdersLeave);
  EXPECT_EQ(x.next_change->event_day, kToday - 25);
  EXPECT_EQ(x.next_change->because,
            "her orders of 2025-10-30 leave the 30-day window: spend_30d falls to 350.00, "
            "below 500.00");
  ExpectExact(x);
}

TEST_F(ExplainTest, HighValueIsReachedWhenARefundLeavesTheThirtyDayWindow) {
  Own(EventType::kJoin, At(100));
  Own(EventType::kOrder, At(40), 10000);   // out of the window already
  Own(EventType::kRefund, At(25), 10000);  // ... refunded within it
  for (int days_ago : {10, 8, 6, 4}) Own(EventType::kOrder, At(days_ago), 13000);
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kDormant);  // 520.00 - 100.00 < 500.00
  ASSERT_TRUE(x.next_change.has_value());
  EXPECT_EQ(x.next_change->day, kToday + 5);
  EXPECT_EQ(x.next_change->tier, Tier::kHighValue);
  EXPECT_EQ(x.next_change->cause, NextChangeCause::kRefundsLeave);
  EXPECT_EQ(x.next_change->because,
            "her refunds of 2025-10-30 leave the 30-day window: spend_30d rises to 520.00, "
            "reaching 500.00");
  ExpectExact(x);
}

TEST_F(ExplainTest, ALeftMemberNeverChangesByTimeButMayRejoin) {
  Own(EventType::kJoin, At(10));
  Own(EventType::kMessage, At(9));
  Own(EventType::kOrder, At(9), 9900);
  Own(EventType::kLeave, At(2));
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kLeft);
  EXPECT_TRUE(x.rules[0].holds);
  EXPECT_FALSE(x.next_change.has_value());
  // A join makes her a member again, joined 10 days ago: new (while within
  // 30 days of her first join), or high_value with enough orders.
  ASSERT_EQ(x.to_reach.size(), 2u);
  const Reach* hv = Find(x, Tier::kHighValue);
  ASSERT_NE(hv, nullptr);
  EXPECT_TRUE(hv->join);
  EXPECT_EQ(*hv->spend_30d_fen, 40100);
  EXPECT_EQ(*hv->orders, 3);  // four in all: three repeats
  const Reach* fresh = Find(x, Tier::kNew);
  ASSERT_NE(fresh, nullptr);
  EXPECT_TRUE(fresh->join);
  EXPECT_EQ(*fresh->by, LastMsOfDay(kToday - 10 + 29, kOffset));
}

TEST_F(ExplainTest, ALeftMemberWhoJoinedLongAgoComesBackToWhatHerInteractionsSay) {
  Own(EventType::kJoin, At(100));
  Own(EventType::kMessage, At(2));
  Own(EventType::kLeave, At(1));
  Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kLeft);
  EXPECT_EQ(Find(x, Tier::kNew), nullptr);
  EXPECT_EQ(Find(x, Tier::kDormant), nullptr);
  const Reach* regular = Find(x, Tier::kRegular);
  ASSERT_NE(regular, nullptr);
  EXPECT_TRUE(regular->join);
  EXPECT_EQ(*regular->interactions_7d, 0);
  EXPECT_EQ(*regular->by, LastMsOfDay(kToday + 4, kOffset));  // her message leaves on D+5
  const Reach* active = Find(x, Tier::kActive);
  ASSERT_NE(active, nullptr);
  EXPECT_EQ(*active->interactions_7d, 2);
  EXPECT_EQ(*active->by, LastMsOfDay(kToday + 4, kOffset));

  UserState quiet;
  Apply(&quiet, EventType::kJoin, At(100));
  Apply(&quiet, EventType::kLeave, At(1));
  x = Explain(quiet, kToday, config_);
  const Reach* dormant = Find(x, Tier::kDormant);
  ASSERT_NE(dormant, nullptr);
  EXPECT_TRUE(dormant->join);
  EXPECT_EQ(Find(x, Tier::kRegular)->interactions_7d, 1);
  EXPECT_EQ(*Find(x, Tier::kRegular)->by, kNoTs);
}

TEST_F(ExplainTest, ToReachListsWhatADormantMemberLacks) {
  Own(EventType::kJoin, At(60));
  Own(EventType::kOrder, At(3), 10000);
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kDormant);
  ASSERT_EQ(x.to_reach.size(), 3u);
  EXPECT_EQ(x.to_reach[0].tier, Tier::kHighValue);
  EXPECT_FALSE(x.to_reach[0].join);
  EXPECT_EQ(*x.to_reach[0].spend_30d_fen, 40000);
  EXPECT_EQ(*x.to_reach[0].orders, 3);
  EXPECT_FALSE(x.to_reach[0].interactions_7d.has_value());
  EXPECT_FALSE(x.to_reach[0].by.has_value());
  EXPECT_EQ(x.to_reach[1].tier, Tier::kActive);
  EXPECT_EQ(*x.to_reach[1].interactions_7d, 3);
  EXPECT_EQ(*x.to_reach[1].by, kNoTs);  // she has none that could leave
  EXPECT_EQ(x.to_reach[2].tier, Tier::kRegular);
  EXPECT_EQ(*x.to_reach[2].interactions_7d, 1);
  // Her order leaves on D+27, and only changes spend: nothing changes her tier.
  EXPECT_FALSE(x.next_change.has_value());
}

TEST_F(ExplainTest, ActiveNeedsItsInteractionsBeforeHerOldestOneLeaves) {
  Own(EventType::kJoin, At(60));
  Own(EventType::kMessage, At(3));
  Own(EventType::kMessage, At(1));
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kRegular);
  const Reach* active = Find(x, Tier::kActive);
  ASSERT_NE(active, nullptr);
  EXPECT_EQ(*active->interactions_7d, 1);
  EXPECT_EQ(*active->by, LastMsOfDay(kToday + 3, kOffset));
  // Sent at that ms, one is enough; a ms later (her message of D-3 is
  // gone) it is not.
  for (int64_t ts : {*active->by, *active->by + 1}) {
    UserState s = s_;
    const int32_t day = DayOf(ts, kOffset);
    Apply(&s, EventType::kMessage, ts, 0, day);
    EXPECT_EQ(TierOn(s, day, config_) == Tier::kActive, ts == *active->by) << ts;
  }
}

TEST_F(ExplainTest, AMemberWithoutAJoinBecomesNewByJoining) {
  Own(EventType::kMessage, At(29));  // joined_at: her first event
  Own(EventType::kMessage, At(40));
  Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kDormant);
  const Reach* fresh = Find(x, Tier::kNew);
  ASSERT_NE(fresh, nullptr);
  EXPECT_TRUE(fresh->join);
  EXPECT_EQ(*fresh->by, kNoTs);
  Own(EventType::kJoin, LastMsOfDay(kToday, kOffset));
  EXPECT_EQ(TierOn(s_, kToday, config_), Tier::kNew);
}

TEST_F(ExplainTest, AHighValueMemberWhoJoinedLongAgoCanReachNothingElse) {
  Own(EventType::kJoin, At(100));
  for (int i = 0; i < 4; ++i) Own(EventType::kOrder, At(i), 20000);
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kHighValue);
  EXPECT_TRUE(x.to_reach.empty());
}

TEST_F(ExplainTest, NothingChangesForADormantMemberWithNothingInAWindow) {
  Own(EventType::kJoin, At(100));
  Own(EventType::kMessage, At(45));
  const Explanation x = Now();
  EXPECT_EQ(x.tier, Tier::kDormant);
  EXPECT_FALSE(x.next_change.has_value());
}

TEST_F(ExplainTest, AChangeFrom2100OnNeverComes) {
  // The local day of T's last possible ms (2100-01-01 in +08:00) can still
  // be reached; the day after it cannot (SPEC §1: ts < 2100-01-01T00:00Z).
  const int32_t last_day = DayOf(kMaxTsMs - 1, kOffset);
  for (int32_t message_day : {last_day - 8, last_day - 2}) {
    UserState s;
    Apply(&s, EventType::kJoin, FirstMsOfDay(last_day - 100, kOffset), 0, message_day);
    Apply(&s, EventType::kMessage, FirstMsOfDay(message_day, kOffset), 0, message_day);
    const Explanation x = Explain(s, message_day, config_);
    EXPECT_EQ(x.tier, Tier::kRegular);
    if (message_day + 7 <= last_day) {
      ASSERT_TRUE(x.next_change.has_value());
      EXPECT_LT(x.next_change->at, kMaxTsMs);
      EXPECT_EQ(x.next_change->tier, Tier::kDormant);
    } else {
      EXPECT_FALSE(x.next_change.has_value()) << "dormant from day " << message_day + 7;
    }
  }
}

// ---- the promises on random histories, checked by brute force ----------

// Her tier on `today` after really sending (one event at a time) a join if
// `join`, `k` interactions and `m` orders of `spend` fen in all, at the
// day's last ms.
Tier TierAfterEvents(UserState s, int32_t today, const Config& c, bool join, int64_t k, int64_t m,
                     int64_t spend) {
  const int64_t ts = LastMsOfDay(today, c.utc_offset_ms);
  if (join) Apply(&s, EventType::kJoin, ts, 0, today);
  for (int64_t i = 0; i < k; ++i) Apply(&s, EventType::kMessage, ts, 0, today);
  for (int64_t i = 0; i < m; ++i) Apply(&s, EventType::kOrder, ts, i == 0 ? spend : 0, today);
  return TierOn(s, today, c);
}

TEST(ExplainRandom, MatchesBruteForceOnRandomHistories) {
  std::mt19937_64 rng(12);
  int changes = 0, nulls = 0, reaches = 0;
  int causes[5] = {};
  for (int iter = 0; iter < 3000; ++iter) {
    Config c;
    c.rules.active_interactions_7d = static_cast<int64_t>(rng() % 5);
    c.rules.high_value_repeat_orders = static_cast<int64_t>(rng() % 4);
    c.rules.high_value_spend_fen = std::array<int64_t, 3>{0, 10000, 50000}[rng() % 3];
    c.rules.new_days = std::array<int32_t, 3>{1, 7, 30}[rng() % 3];
    UserState s;
    // A referrer who never sent an event of her own, now and then.
    const bool referred = rng() % 8 == 0;
    if (referred) ApplyReferralCredit(&s, At(static_cast<int>(rng() % 60)));
    const int events = static_cast<int>(rng() % 12) + (referred ? 0 : 1);
    for (int i = 0; i < events; ++i) {
      const auto type = static_cast<EventType>(rng() % 8);
      const int64_t ts = At(static_cast<int>(rng() % 45), static_cast<int64_t>(rng() % kMsPerDay));
      const int64_t fen = static_cast<int64_t>(rng() % 30000);
      Apply(&s, type, ts, fen);
    }
    const Explanation x = Explain(s, kToday, c);
    const std::string where = "iteration " + std::to_string(iter);

    // rules: her tier is the first that holds.
    ASSERT_EQ(x.tier, TierOn(s, kToday, c)) << where;
    for (const RuleCheck& r : x.rules) {
      if (r.holds) {
        ASSERT_EQ(r.tier, x.tier) << where;
        break;
      }
    }

    // next_change: the first day her tier differs, scanned day by day well
    // past every window and new_days.
    int32_t first = kNoDay;
    for (int32_t d = kToday + 1; d <= kToday + 400; ++d) {
      if (TierOn(s, d, c) != x.tier) {
        first = d;
        break;
      }
    }
    if (first == kNoDay) {
      ASSERT_FALSE(x.next_change.has_value()) << where;
      ++nulls;
    } else {
      ASSERT_TRUE(x.next_change.has_value()) << where << ": changes on day +" << first - kToday;
      const NextChange& n = *x.next_change;
      ASSERT_EQ(n.day, first) << where;
      ASSERT_EQ(n.tier, TierOn(s, first, c)) << where;
      ASSERT_EQ(n.at, FirstMsOfDay(first, kOffset)) << where;
      ++changes;
      ++causes[static_cast<int>(n.cause)];
      // The cause names what happens on that day.
      auto bucket = [&](int32_t day) {
        for (const DayBucket& b : s.buckets) {
          if (b.day == day) return b;
        }
        return DayBucket{};
      };
      switch (n.cause) {
        case NextChangeCause::kNewEnds:
          EXPECT_EQ(n.day, DayOf(s.joined_at(), kOffset) + c.rules.new_days) << where;
          break;
        case NextChangeCause::kOrdersLeave:
          EXPECT_GT(bucket(n.day - 30).spend_fen, 0) << where;
          break;
        case NextChangeCause::kRefundsLeave:
          EXPECT_LT(bucket(n.day - 30).spend_fen, 0) << where;
          break;
        case NextChangeCause::kInteractionsLeave:
        case NextChangeCause::kLastInteractionsLeave:
          EXPECT_GT(bucket(n.day - 7).interactions, 0u) << where;
          EXPECT_EQ(ComputeWindows(s, n.day).interactions_7d == 0,
                    n.cause == NextChangeCause::kLastInteractionsLeave)
              << where;
          break;
      }
      EXPECT_FALSE(n.because.empty()) << where;
    }

    // to_reach: a tier is listed iff some of her events of the day give it
    // to her, and what is listed is the least of each kind that does.
    const int64_t need = std::max<int64_t>(
        0, c.rules.high_value_spend_fen - ComputeWindows(s, kToday).spend_30d_fen);
    for (int t = 1; t < kTierCount; ++t) {
      const Tier tier = static_cast<Tier>(t);
      if (tier == x.tier) continue;
      const Reach* listed = Find(x, tier);
      bool reachable = false;
      for (int join = 0; join < 2; ++join) {
        for (int64_t k = 0; k <= c.rules.active_interactions_7d + 1; ++k) {
          for (int64_t m = 0; m <= c.rules.high_value_repeat_orders + 2; ++m) {
            for (int64_t spend : {int64_t{0}, need - 1, need, need + 1}) {
              if (spend < 0 || (m == 0 && spend > 0)) continue;
              if (TierAfterEvents(s, kToday, c, join, k, m, spend) != tier) continue;
              reachable = true;
              if (listed == nullptr) continue;
              const std::string what = where + " " + std::string(TierName(tier)) + " by join " +
                                       std::to_string(join) + " k " + std::to_string(k) + " m " +
                                       std::to_string(m) + " spend " + std::to_string(spend);
              if (tier == Tier::kNew) {
                EXPECT_GE(join + k + m, 1) << what;  // one event: the join listed
              } else {
                EXPECT_GE(join, listed->join ? 1 : 0) << what;
              }
              EXPECT_GE(k, listed->interactions_7d.value_or(0)) << what;
              EXPECT_GE(m, listed->orders.value_or(0)) << what;
              EXPECT_GE(spend, listed->spend_30d_fen.value_or(0)) << what;
            }
          }
        }
      }
      ASSERT_EQ(listed != nullptr, reachable) << where << " " << TierName(tier);
      if (listed == nullptr) continue;
      ++reaches;
      EXPECT_EQ(TierAfterEvents(s, kToday, c, listed->join, listed->interactions_7d.value_or(0),
                                listed->orders.value_or(0), listed->spend_30d_fen.value_or(0)),
                tier)
          << where << " " << TierName(tier);
      if (listed->by.has_value() && *listed->by != kNoTs &&
          (tier == Tier::kActive || tier == Tier::kRegular)) {
        // By `by` her interactions and the listed ones still make the count;
        // a day later they do not.
        const int64_t floor = tier == Tier::kActive ? c.rules.active_interactions_7d : 1;
        const int32_t by_day = DayOf(*listed->by, kOffset);
        EXPECT_EQ(*listed->by, LastMsOfDay(by_day, kOffset));
        EXPECT_GE(ComputeWindows(s, by_day).interactions_7d + *listed->interactions_7d, floor)
            << where;
        EXPECT_LT(ComputeWindows(s, by_day + 1).interactions_7d + *listed->interactions_7d, floor)
            << where;
      }
    }
  }
  // Not vacuous: every kind of answer came up.
  EXPECT_GT(changes, 500);
  EXPECT_GT(nulls, 100);
  EXPECT_GT(reaches, 1000);
  for (int i = 0; i < 5; ++i) EXPECT_GT(causes[i], 5) << "cause " << i;
}

}  // namespace
}  // namespace tierstream::state
