// A user's tier explained: the rules with her values, her next change by
// time alone, and what her own events would need to be for each other tier.
#include "state/explain.h"

#include <algorithm>

#include "common/money.h"

namespace tierstream::state {

namespace {

using ingest::Event;
using ingest::EventType;

constexpr int Rank(Tier t) { return static_cast<int>(t); }

std::vector<RuleCheck> CheckRules(const UserState& s, const Windows& w, int32_t today,
                                  const Config& config) {
  const TierRules& r = config.rules;
  const int64_t repeat_orders = s.orders_total > 0 ? s.orders_total - 1 : 0;
  const int64_t days_since_joined = today - DayOf(s.joined_at(), config.utc_offset_ms);
  std::vector<RuleCheck> rules(kTierCount);
  rules[0] = {Tier::kLeft,
              !s.member(),
              {{"member", Unit::kBool, s.member() ? 1 : 0}},
              {{"member", Unit::kBool, 0}}};
  rules[1] = {
      Tier::kHighValue,
      w.spend_30d_fen >= r.high_value_spend_fen && repeat_orders >= r.high_value_repeat_orders,
      {{"spend_30d", Unit::kFen, w.spend_30d_fen}, {"repeat_orders", Unit::kCount, repeat_orders}},
      {{"spend_30d", Unit::kFen, r.high_value_spend_fen},
       {"repeat_orders", Unit::kCount, r.high_value_repeat_orders}}};
  rules[2] = {Tier::kNew,
              days_since_joined < r.new_days,
              {{"joined_at", Unit::kTs, s.joined_at()},
               {"days_since_joined", Unit::kCount, days_since_joined}},
              {{"days_since_joined", Unit::kCount, r.new_days}}};
  rules[3] = {Tier::kActive,
              w.interactions_7d >= r.active_interactions_7d,
              {{"interactions_7d", Unit::kCount, w.interactions_7d}},
              {{"interactions_7d", Unit::kCount, r.active_interactions_7d}}};
  rules[4] = {Tier::kDormant,
              w.interactions_7d == 0,
              {{"interactions_7d", Unit::kCount, w.interactions_7d}},
              {{"interactions_7d", Unit::kCount, 0}}};
  rules[5] = {Tier::kRegular, true, {}, {}};
  return rules;
}

Tier TierOn(const UserState& s, int32_t day, const Config& config) {
  return EvaluateTier(s, ComputeWindows(s, day), day, config.utc_offset_ms, config.rules);
}

std::string Yuan(int64_t fen) {
  std::string out;
  AppendYuan(&out, fen);
  return out;
}

uint32_t InteractionsOn(const UserState& s, int32_t day) {
  for (const DayBucket& b : s.buckets) {
    if (b.day == day) return b.interactions;
  }
  return 0;
}

// Names what flips on `change->day`, from her tiers before and on it: a rule
// ranked above the old tier that starts to hold, or else the old tier's rule
// that stops holding. With no event of hers, only these can flip: a refund
// leaving the 30-day window raises spend_30d and an order lowers it; the
// 7-day count only falls; new only ends; member and repeat_orders stay.
void DescribeChange(const UserState& s, Tier old_tier, const Config& config, NextChange* change) {
  const int32_t d = change->day;
  const TierRules& r = config.rules;
  const Windows w = ComputeWindows(s, d);
  const Tier flipped = Rank(change->tier) < Rank(old_tier) ? change->tier : old_tier;
  switch (flipped) {
    case Tier::kHighValue: {
      change->event_day = d - kWindow30;
      const bool rises = change->tier == Tier::kHighValue;
      change->cause = rises ? NextChangeCause::kRefundsLeave : NextChangeCause::kOrdersLeave;
      change->because = std::string(rises ? "her refunds of " : "her orders of ") +
                        FormatDay(change->event_day) + " leave the 30-day window: spend_30d " +
                        (rises ? "rises to " : "falls to ") + Yuan(w.spend_30d_fen) +
                        (rises ? ", reaching " : ", below ") + Yuan(r.high_value_spend_fen);
      return;
    }
    case Tier::kActive:
    case Tier::kDormant: {
      change->event_day = d - kWindow7;
      const bool one = InteractionsOn(s, change->event_day) == 1;
      const std::string what = one ? " interaction, of " : " interactions, of ";
      const std::string leave = one ? " leaves" : " leave";
      if (w.interactions_7d == 0) {
        change->cause = NextChangeCause::kLastInteractionsLeave;
        change->because =
            "her last" + what + FormatDay(change->event_day) + "," + leave + " the 7-day window";
      } else {
        change->cause = NextChangeCause::kInteractionsLeave;
        change->because = std::string(one ? "her interaction of " : "her interactions of ") +
                          FormatDay(change->event_day) + leave +
                          " the 7-day window: " + std::to_string(w.interactions_7d) +
                          (w.interactions_7d == 1 ? " remains" : " remain") + ", fewer than " +
                          std::to_string(r.active_interactions_7d);
      }
      return;
    }
    case Tier::kNew:
    default: {  // left, regular and none never flip by time
      change->cause = NextChangeCause::kNewEnds;
      change->event_day = kNoDay;
      change->because = std::to_string(r.new_days) + " days since she joined on " +
                        FormatDay(DayOf(s.joined_at(), config.utc_offset_ms));
      return;
    }
  }
}

// Her tier only changes by time on a day NextCheckDay names: the end of
// new, or a day of hers leaving the 7- or 30-day window; between two such
// days every input of EvaluateTier is constant (member and repeat_orders
// always are). The days are finite and increasing — each of her at most 30
// buckets names at most two, day(joined_at) + new_days one more — and
// NextCheckDay gives kNoDay past the last: so this stops within 61 steps,
// and a tier that has not changed by then never does.
std::optional<NextChange> FindNextChange(const UserState& s, int32_t today, Tier tier,
                                         const Config& config) {
  const int64_t offset = config.utc_offset_ms;
  for (int32_t d = NextCheckDay(s, today, offset, config.rules); d != kNoDay;
       d = NextCheckDay(s, d, offset, config.rules)) {
    const Tier t = TierOn(s, d, config);
    if (t == tier) continue;
    // T never reaches 2100 (SPEC §1): a change from then on never happens.
    if (FirstMsOfDay(d, offset) >= kMaxTsMs) return std::nullopt;
    NextChange change;
    change.day = d;
    change.at = FirstMsOfDay(d, offset);
    change.tier = t;
    DescribeChange(s, tier, config, &change);
    return change;
  }
  return std::nullopt;
}

// Her tier on `today` after her own events `r` describes, sent at the day's
// last ms: a join (first), `interactions` interactions, `orders` orders of
// `spend_30d_fen` in all. One event of each kind goes through ApplyOwnEvent,
// so joined_at, membership and the buckets follow the rules exactly; the
// rest of a kind only adds to its count.
Tier TierAfter(const UserState& s, int32_t today, const Config& config, const Reach& r) {
  UserState h = s;
  const int64_t ts = LastMsOfDay(today, config.utc_offset_ms);
  auto apply = [&](EventType type, int64_t fen) {
    Event e;
    e.type = type;
    e.ts_ms = ts;
    e.amount_fen = fen;
    ApplyOwnEvent(&h, e, config.utc_offset_ms, today);
  };
  const int64_t interactions = r.interactions_7d.value_or(0);
  const int64_t orders = r.orders.value_or(0);
  if (r.join) apply(EventType::kJoin, 0);
  if (interactions > 0) apply(EventType::kMessage, 0);
  if (orders > 0) apply(EventType::kOrder, r.spend_30d_fen.value_or(0));
  Windows w = ComputeWindows(h, today);
  if (interactions > 1) w.interactions_7d += interactions - 1;
  if (orders > 1) h.orders_total += static_cast<uint32_t>(orders - 1);
  return EvaluateTier(h, w, today, config.utc_offset_ms, config.rules);
}

// The last ms of the last day from `today` on which her own interactions in
// the 7-day window, plus `added` new ones, still number `need`; kNoTs when
// `added` is enough on its own. REQUIRES: enough on `today`.
int64_t InteractionDeadline(const UserState& s, int32_t today, int64_t added, int64_t need,
                            int64_t utc_offset_ms) {
  if (added >= need) return kNoTs;
  int32_t d = today;
  // Within 7 days every one of hers has left the window: the loop ends.
  while (ComputeWindows(s, d + 1).interactions_7d + added >= need) ++d;
  return LastMsOfDay(d, utc_offset_ms);
}

Reach NewReach(Tier tier, bool join) {
  Reach r;
  r.tier = tier;
  r.join = join;
  return r;
}

// For each tier, the fewest of her actions that could give it to her: any
// set that does has at least as many of each (join, interactions, orders,
// spend), as below. So the tier is reachable iff this one reaches it.
std::vector<Reach> FindReaches(const UserState& s, const Windows& w, int32_t today, Tier tier,
                               const Config& config) {
  const TierRules& rules = config.rules;
  const bool join = !s.member();  // nothing but a join makes her a member again
  std::vector<Reach> out;
  auto consider = [&](Reach r) {
    if (r.tier != tier && TierAfter(s, today, config, r) == r.tier) out.push_back(std::move(r));
  };
  {
    // high_value: spend_30d and orders_total only grow by orders, and
    // repeat_orders >= R > 0 needs orders_total >= R + 1.
    Reach r = NewReach(Tier::kHighValue, join);
    const int64_t spend = std::max<int64_t>(0, rules.high_value_spend_fen - w.spend_30d_fen);
    const int64_t repeat =
        rules.high_value_repeat_orders > 0
            ? std::max<int64_t>(0, rules.high_value_repeat_orders + 1 - s.orders_total)
            : 0;
    r.spend_30d_fen = spend;
    r.orders = std::max<int64_t>(repeat, spend > 0 ? 1 : 0);
    consider(std::move(r));
  }
  {
    // new: joined_at is her first join if she has one; a join is the one
    // event that can move it (to the day, if she has none; her first own
    // event does too, for a referrer who never sent one: a join is that).
    Reach r = NewReach(Tier::kNew, true);
    r.by = s.first_join_ts == kNoTs
               ? kNoTs
               : LastMsOfDay(DayOf(s.first_join_ts, config.utc_offset_ms) + rules.new_days - 1,
                             config.utc_offset_ms);
    consider(std::move(r));
  }
  {
    // active: only interactions raise interactions_7d; an order could only
    // make her high_value (or new), a join (member) new.
    Reach r = NewReach(Tier::kActive, join);
    const int64_t added = std::max<int64_t>(0, rules.active_interactions_7d - w.interactions_7d);
    r.interactions_7d = added;
    r.by = InteractionDeadline(s, today, added, rules.active_interactions_7d, config.utc_offset_ms);
    consider(std::move(r));
  }
  // dormant: no event lowers interactions_7d; a left member with none may
  // come back to it by a join.
  consider(NewReach(Tier::kDormant, join));
  {
    // regular: at least one interaction in the window, fewer than active's.
    Reach r = NewReach(Tier::kRegular, join);
    const int64_t added = w.interactions_7d == 0 ? 1 : 0;
    r.interactions_7d = added;
    r.by = InteractionDeadline(s, today, added, 1, config.utc_offset_ms);
    consider(std::move(r));
  }
  return out;
}

}  // namespace

Explanation Explain(const UserState& s, int32_t today, const Config& config) {
  Explanation out;
  const Windows w = ComputeWindows(s, today);
  out.tier = EvaluateTier(s, w, today, config.utc_offset_ms, config.rules);
  out.rules = CheckRules(s, w, today, config);
  out.next_change = FindNextChange(s, today, out.tier, config);
  out.to_reach = FindReaches(s, w, today, out.tier, config);
  return out;
}

}  // namespace tierstream::state
