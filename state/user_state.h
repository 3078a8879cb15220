// UserState: everything tierstream keeps about one user, and the pure
// functions of SPEC §3 over it — applying an event, the windowed counts as of
// a day, the tier, and the next day on which the tier can change by time alone.
//
// Per-day buckets cover only the last 30 days of event time: an event older
// than that can never re-enter a window because T never decreases. Money is
// fen. A UserState is a plain value; confined to the shard that owns it.
#ifndef TIERSTREAM_STATE_USER_STATE_H_
#define TIERSTREAM_STATE_USER_STATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "ingest/event.h"
#include "state/config.h"

namespace tierstream::state {

enum class Tier : uint8_t { kLeft = 0, kHighValue, kNew, kActive, kDormant, kRegular, kNone };
inline constexpr int kTierCount = 6;
std::string_view TierName(Tier t);
std::optional<Tier> ParseTier(std::string_view name);

inline constexpr int32_t kWindow7 = 7;
inline constexpr int32_t kWindow30 = 30;

struct DayBucket {
  int32_t day = 0;
  uint32_t interactions = 0;
  uint32_t orders = 0;
  int64_t spend_fen = 0;  // orders minus refunds of that day
};

struct UserState {
  int64_t membership_ts = kNoTs;  // ts of the latest own join/leave
  bool membership_leave = false;  // ... and whether it was a leave
  Tier tier = Tier::kNone;        // as of the owning shard's swept day
  int64_t first_join_ts = kNoTs;  // smallest own join
  int64_t first_own_ts = kNoTs;   // smallest own event of any type
  int64_t first_ref_ts = kNoTs;   // smallest join naming this user as referrer
  int64_t last_active = kNoTs;    // largest own interaction or order
  int64_t spend_total_fen = 0;
  int64_t points = 0;
  uint32_t orders_total = 0;
  uint32_t referrals = 0;
  uint32_t changes = 0;             // her tier changes so far (the change feed's seq)
  int32_t next_check_day = kNoDay;  // scheduled re-evaluation (not persisted)
  std::vector<DayBucket> buckets;   // ascending days within the 30-day window

  bool member() const { return membership_ts == kNoTs || !membership_leave; }
  int64_t joined_at() const {
    if (first_join_ts != kNoTs) return first_join_ts;
    if (first_own_ts != kNoTs) return first_own_ts;
    return first_ref_ts;
  }
};

struct Windows {
  int64_t spend_30d_fen = 0;
  int64_t interactions_7d = 0;
  int64_t interactions_30d = 0;
  int64_t orders_30d = 0;
};

// Applies one accepted event of the user's own (not a referral credit).
// `today` is day(T) with T already including this event.
void ApplyOwnEvent(UserState* s, const ingest::Event& e, int64_t utc_offset_ms, int32_t today);
// Applies the credit of a join naming this user as referrer (not self).
void ApplyReferralCredit(UserState* s, int64_t join_ts);
// Drops buckets that left the 30-day window ending on `today`.
void PruneBuckets(UserState* s, int32_t today);

Windows ComputeWindows(const UserState& s, int32_t today);
Tier EvaluateTier(const UserState& s, const Windows& w, int32_t today, int64_t utc_offset_ms,
                  const TierRules& rules);
// The first day after `today` on which EvaluateTier can give another answer
// with no new event, or kNoDay if never.
int32_t NextCheckDay(const UserState& s, int32_t today, int64_t utc_offset_ms,
                     const TierRules& rules);

// Compact binary encoding with a leading version byte; varints throughout.
void EncodeUserState(const UserState& s, std::string* out);
Status DecodeUserState(std::string_view in, UserState* s);

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_USER_STATE_H_
