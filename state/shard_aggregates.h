// ShardAggregates: one shard's counters and per-day histograms, from which
// every KPI of SPEC §5 is a sum of at most 60 array cells, and the codec of
// the shard meta that persists them with the shard's position.
//
// The user-derived part (members, buyers, members by last-active and join
// day) is kept by adding each user's Contribution before a change with sign
// -1 and after it with +1; the event-derived part (orders, GMV, refunds,
// referred joins) is added per event by the caller.
//
// Ownership: a plain value, owned by its ShardState.
// Thread safety: confined — the shard's worker owns it.
#ifndef TIERSTREAM_STATE_SHARD_AGGREGATES_H_
#define TIERSTREAM_STATE_SHARD_AGGREGATES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "state/input_position.h"
#include "state/kpis.h"
#include "state/user_state.h"

namespace tierstream::state {

// Day cells cover every day an accepted ts can fall on, for any offset
// within ±24h: [2000-01-01 - 1 day, 2100-01-01 + 1 day].
inline constexpr int32_t kFirstCellDay = static_cast<int32_t>(kMinTsMs / kMsPerDay) - 2;
inline constexpr int32_t kLastCellDay = static_cast<int32_t>(kMaxTsMs / kMsPerDay) + 2;

// Per-day counters over every possible event day (2000..2100).
class DayHist {
 public:
  DayHist();
  // REQUIRES: kFirstCellDay <= day <= kLastCellDay.
  void Add(int32_t day, int64_t v) { cells_[static_cast<size_t>(day - kFirstCellDay)] += v; }
  int64_t Sum(int32_t from, int32_t to) const;  // inclusive, clamped
  void Encode(std::string* out) const;
  bool Decode(std::string_view* in);

 private:
  std::vector<int64_t> cells_;
};

// What one user adds to the shard's user-derived aggregates.
struct Contribution {
  bool member = false;
  int32_t last_active_day = kNoDay;
  int32_t joined_day = kNoDay;
  bool buyer = false;
  bool repeat_buyer = false;
};

struct ShardAggregates {
  int64_t users = 0, members = 0, buyers = 0, repeat_buyers = 0;
  std::array<int64_t, kTierCount> tiers{};
  int64_t accepted = 0, duplicates = 0, rejected = 0, beyond_horizon = 0;
  DayHist members_by_last_active, members_by_joined;
  DayHist orders, community_orders, gmv_fen, refunds_fen, referred_joins;

  static Contribution ContributionOf(const UserState& s, int64_t utc_offset_ms) {
    Contribution c;
    c.member = s.member();
    if (c.member) {
      if (s.last_active != kNoTs) c.last_active_day = DayOf(s.last_active, utc_offset_ms);
      c.joined_day = DayOf(s.joined_at(), utc_offset_ms);
    }
    c.buyer = s.orders_total >= 1;
    c.repeat_buyer = s.orders_total >= 2;
    return c;
  }
  void AddContribution(const Contribution& c, int64_t sign) {
    if (c.member) {
      members += sign;
      if (c.last_active_day != kNoDay) members_by_last_active.Add(c.last_active_day, sign);
      members_by_joined.Add(c.joined_day, sign);
    }
    buyers += c.buyer ? sign : 0;
    repeat_buyers += c.repeat_buyer ? sign : 0;
  }
  // A user's tier moved from `from` (kNone: she had none) to `to`.
  void MoveTier(Tier from, Tier to) {
    if (from != Tier::kNone) --tiers[static_cast<size_t>(from)];
    ++tiers[static_cast<size_t>(to)];
  }

  // The shard's part of the KPIs as of `today` (kNoDay: counters only).
  KpiPartial Kpis(int32_t today) const;
};

// What a shard meta holds besides the aggregates.
struct ShardMetaHeader {
  uint32_t shard_id = 0;
  uint64_t log_seq = 0;        // the caller's log position the meta covers
  int64_t max_ts = kNoTs;      // the shard's watermark
  int32_t swept_day = kNoDay;  // the last day whose tier checks are all done
  // The newest arrival day of an id ever forgotten (DedupIndex). Version 1
  // metas did not keep it: `forgotten_known` is then false.
  int32_t forgotten_through_day = kNoDay;
  bool forgotten_known = true;
  // The shard's tier changes so far (TierChange::shard_seq of the last one;
  // versions 1 and 2 did not keep it: 0).
  uint64_t change_seq = 0;
  // Where the shard stands in its input (the Kafka mode; versions 1 to 3
  // did not keep it: empty).
  InputPosition input_position;
  // The Kafka mode's changelog: the owner generation the checkpoint was
  // written under, and its number (versions 1 to 3: 0).
  uint64_t owner_generation = 0;
  uint64_t checkpoint_number = 0;
  // Forward marks by source partition (input_position.h; empty before v4).
  std::vector<uint64_t> forward_marks;
};

// The shard meta: a version byte, the header, the counters, the tier
// histogram and the day histograms. Version 1 (still read) kept the
// process-wide rejected count in shard 0's header and no bookkeeping of
// duplicates beyond the horizon; version 2 (still read) no change count;
// version 3 (still read) no input position.
void EncodeShardMeta(const ShardMetaHeader& header, const ShardAggregates& agg, std::string* out);
// REQUIRES: header->shard_id is the shard expected; the others are outputs.
Status DecodeShardMeta(std::string_view in, ShardMetaHeader* header, ShardAggregates* agg);

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_SHARD_AGGREGATES_H_
