// Explanation: why a user has her tier as of a day (each rule of SPEC §3 with
// her values and its thresholds), when her tier next changes if no event of
// hers arrives, and what she lacks for each other tier her own events could
// give her on that day — what GET /v1/users/{id}/explain answers
// (server/wire_json renders it). Pure functions of her UserState, the day
// and the Config; plain values; thread-safe.
#ifndef TIERSTREAM_STATE_EXPLAIN_H_
#define TIERSTREAM_STATE_EXPLAIN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "state/config.h"
#include "state/user_state.h"

namespace tierstream::state {

// How a Quantity's value reads: money is fen (rendered in yuan), a
// timestamp ms since the epoch, a flag 0 or 1.
enum class Unit : uint8_t { kCount, kFen, kTs, kBool };

struct Quantity {
  std::string_view name;  // static: "spend_30d", "interactions_7d", ...
  Unit unit = Unit::kCount;
  int64_t value = 0;
};

// One tier rule, tested on its own as of the day: her values, its
// thresholds, and whether it holds. Her tier is the first rule, in
// evaluation order, that holds. The tests:
//   left        member = thresholds.member (false)
//   high_value  spend_30d >= thresholds.spend_30d and
//               repeat_orders >= thresholds.repeat_orders
//   new         days_since_joined < thresholds.days_since_joined (new_days);
//               days_since_joined = day - day(joined_at), joined_at given too
//   active      interactions_7d >= thresholds.interactions_7d
//   dormant     interactions_7d = thresholds.interactions_7d (0)
//   regular     always (no values, no thresholds): the rule of last resort
struct RuleCheck {
  Tier tier = Tier::kNone;
  bool holds = false;
  std::vector<Quantity> values;
  std::vector<Quantity> thresholds;
};

// Which rule's outcome flips on a NextChange's day (event_day: the day
// whose events leave a window).
enum class NextChangeCause : uint8_t {
  // new_days since day(joined_at): new stops holding.
  kNewEnds,
  // The net spend of event_day leaves the 30-day window: high_value stops.
  kOrdersLeave,
  // The net refund of event_day leaves the 30-day window: high_value starts.
  kRefundsLeave,
  // Interactions of event_day leave the 7-day window, some stay: active stops.
  kInteractionsLeave,
  // The last ones in the 7-day window, event_day's, leave it: dormant starts
  // (or active stops, with none left).
  kLastInteractionsLeave,
};

// The first change of her tier with no event of hers.
struct NextChange {
  int32_t day = kNoDay;     // the first day after today on which her tier differs
  int64_t at = kNoTs;       // its first ms: her tier is `tier` as of T = at, the old one at at - 1
  Tier tier = Tier::kNone;  // her tier on `day`
  NextChangeCause cause = NextChangeCause::kNewEnds;
  int32_t event_day = kNoDay;  // the day whose events leave a window (kNoDay for kNewEnds)
  std::string because;         // the cause, one sentence for people
};

// What she lacks as of the day to have `tier` by her own events on that day:
// the fewest of each. Her actions are joining, interactions and orders;
// refunds and leaving are not counted as ways to reach a tier.
struct Reach {
  Tier tier = Tier::kNone;
  // She must send a join: she left (a join after her leave makes her a
  // member again), or — for new — a join is what moves her joined_at to the
  // day (she has no join of her own yet) or back within new_days.
  bool join = false;
  // high_value: the net spend (fen) still missing in the 30-day window, and
  // the fewest orders still needed: for the repeat-order threshold, and at
  // least one to carry missing spend.
  std::optional<int64_t> spend_30d_fen;
  std::optional<int64_t> orders;
  // active, regular: interactions still needed in the 7-day window.
  std::optional<int64_t> interactions_7d;
  // new, active, regular: the last ms at which those events still suffice
  // (kNoTs: no deadline). active and regular: her interactions in the 7-day
  // window thin out as days pass, so sent later they would need more; new:
  // a re-join counts until new_days after her first join.
  std::optional<int64_t> by;
};

struct Explanation {
  Tier tier = Tier::kNone;                // EvaluateTier's answer: the first rule that holds
  std::vector<RuleCheck> rules;           // all six, in evaluation order
  std::optional<NextChange> next_change;  // nullopt: never, with no event of hers
  // In tier order, neither `left` (reached by leaving) nor her tier. A tier
  // not listed cannot be hers by her events of the day: only time can bring
  // it (dormant, regular; see next_change), or nothing (new for a member who
  // joined long ago, anything below high_value for a high_value member).
  std::vector<Reach> to_reach;
};

// The explanation of the user whose state is `s` as of `today` (day(T)).
// REQUIRES: `s` holds no event after `today` (T is the largest ts).
Explanation Explain(const UserState& s, int32_t today, const Config& config);

// The first ms of `day` and the last, in the offset of the day numbers.
inline int64_t FirstMsOfDay(int32_t day, int64_t utc_offset_ms) {
  return int64_t{day} * kMsPerDay - utc_offset_ms;
}
inline int64_t LastMsOfDay(int32_t day, int64_t utc_offset_ms) {
  return FirstMsOfDay(day + 1, utc_offset_ms) - 1;
}

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_EXPLAIN_H_
