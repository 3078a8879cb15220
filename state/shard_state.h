// ShardState: the users one shard owns, its KPI aggregates, its duplicate
// index and its timer index of upcoming tier changes.
//
// All of SPEC §3–§5 that depends on a shard's users is maintained here
// incrementally: per-day histograms (orders, GMV, refunds, referred joins,
// members by last-active day and by join day) make every windowed KPI a sum
// of at most 60 array cells, and a tier histogram is updated on every tier
// change. As T crosses a day, Sweep() re-evaluates only the users whose tier
// can change that day, in bounded slices. Nothing here scans all users except
// ListTier().
//
// Thread safety: confined — one pipeline worker owns a ShardState.
#ifndef TIERSTREAM_STATE_SHARD_STATE_H_
#define TIERSTREAM_STATE_SHARD_STATE_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/node_hash_map.h>

#include "common/hash.h"
#include "common/status.h"
#include "ingest/event.h"
#include "state/config.h"
#include "state/kpis.h"
#include "state/user_state.h"

namespace tierstream::state {

// A user's profile as of T (SPEC §3).
struct Profile {
  std::string user_id;
  bool member = true;
  int64_t joined_at = 0;
  int64_t last_active = kNoTs;  // kNoTs renders as null
  int64_t interactions_7d = 0, interactions_30d = 0, orders_total = 0, orders_30d = 0;
  int64_t repeat_orders = 0, spend_30d_fen = 0, spend_total_fen = 0, points = 0, referrals = 0;
  Tier tier = Tier::kNone;
};
std::string RenderProfileJson(const Profile& p, int64_t as_of);

class ShardState {
 public:
  ShardState(uint32_t shard_id, const Config& config);
  ShardState(const ShardState&) = delete;
  ShardState& operator=(const ShardState&) = delete;

  // ---- duplicates (SPEC §4)
  // Records `id` (hashed with `seed`: events and referral credits use
  // different seeds) and returns true the first time it is seen.
  bool MarkSeen(std::string_view id, uint64_t seed, int64_t ts_ms);
  // Forgets an id recorded by MarkSeen whose event could not be made durable.
  void UnmarkSeen(std::string_view id, uint64_t seed);
  void CountDuplicate() { ++agg_.duplicates; }

  // ---- events
  // Applies an accepted event (own or referral credit). `today` = day(T),
  // with T already covering this event.
  void Apply(const ingest::Event& e, int32_t today);

  // ---- time
  // Re-evaluates users whose tier can change by `today`, at most `budget`
  // of them. Returns true when the shard is fully as of `today`.
  bool Sweep(int32_t today, size_t budget);
  int32_t swept_day() const { return swept_day_; }
  // Forgets event ids older than the duplicate horizon.
  void ExpireSeen(int32_t today);

  // ---- queries (REQUIRES: Sweep(today) completed for tier-based answers)
  bool GetProfile(std::string_view user_id, int32_t today, Profile* out) const;
  KpiPartial Kpis(int32_t today) const;
  // Members of `tier` with user_id > after, ascending, at most `limit`.
  std::vector<std::string> ListTier(Tier tier, std::string_view after, size_t limit) const;

  size_t user_count() const { return users_.size(); }
  size_t seen_count() const { return seen_.size(); }
  size_t dirty_count() const { return dirty_.size(); }
  int64_t max_ts() const { return max_ts_; }

  // ---- persistence
  // Checkpointing is two-phase so that a failed write loses nothing:
  // DrainDirty/DrainNewSeen hand out what changed since the last checkpoint,
  // then CheckpointDone(ok) forgets it, or on failure marks it changed again.
  //
  // Calls fn(user_id, encoded_state) for each user changed since the last checkpoint.
  // Users come in key order: RocksDB's memtable inserts sorted keys far
  // faster than random ones.
  template <typename Fn>
  void DrainDirty(Fn&& fn) {
    std::sort(dirty_.begin(), dirty_.end(),
              [](const Entry* a, const Entry* b) { return a->first < b->first; });
    std::string buf;
    for (Entry* e : dirty_) {
      buf.clear();
      EncodeUserState(e->second, &buf);
      fn(std::string_view(e->first), std::string_view(buf));
      e->second.dirty = false;
    }
    draining_dirty_.swap(dirty_);
    dirty_.clear();
  }
  // Calls fn(day, packed_hashes) for ids first seen since the last checkpoint.
  template <typename Fn>
  void DrainNewSeen(Fn&& fn) {
    absl::flat_hash_map<int32_t, std::string> by_day;
    for (const auto& [h, day] : new_seen_) {
      auto it = seen_.find(h);
      if (it == seen_.end() || it->second != day) continue;  // unmarked or expired
      std::string& packed = by_day[day];
      packed.append(reinterpret_cast<const char*>(&h.lo), 8);
      packed.append(reinterpret_cast<const char*>(&h.hi), 8);
    }
    draining_seen_.swap(new_seen_);
    new_seen_.clear();
    for (const auto& [day, packed] : by_day) fn(day, std::string_view(packed));
  }
  void CheckpointDone(bool ok);
  // Shard-level aggregates, swept day and max ts, plus the caller's log position.
  void EncodeMeta(uint64_t log_seq, int64_t events_rejected, std::string* out) const;
  Status DecodeMeta(std::string_view in, uint64_t* log_seq, int64_t* events_rejected);
  Status LoadUser(std::string_view user_id, std::string_view encoded);
  Status LoadSeen(int32_t day, std::string_view packed);
  // After loading: schedules every user's next tier check.
  void RebuildTimers();

 private:
  using UserMap = absl::node_hash_map<std::string, UserState>;
  using Entry = UserMap::value_type;

  // What one user adds to the shard's user-derived aggregates.
  struct Contribution {
    bool member = false;
    int32_t last_active_day = kNoDay;
    int32_t joined_day = kNoDay;
    bool buyer = false;
    bool repeat_buyer = false;
  };
  Contribution ContributionOf(const UserState& s) const;
  void AddContribution(const Contribution& c, int64_t sign);
  Entry& FindOrCreate(std::string_view user_id);
  // Re-evaluates the tier at `today`, updates the histogram, reschedules.
  void Reconcile(Entry& e, int32_t today);
  void MarkDirty(Entry& e);

  // Per-day counters over every possible event day (2000..2100).
  class DayHist {
   public:
    DayHist();
    void Add(int32_t day, int64_t v) { cells_[Index(day)] += v; }
    int64_t Sum(int32_t from, int32_t to) const;  // inclusive, clamped
    void Encode(std::string* out) const;
    bool Decode(std::string_view* in);

   private:
    static size_t Index(int32_t day);
    std::vector<int64_t> cells_;
  };

  struct Aggregates {
    int64_t users = 0, members = 0, buyers = 0, repeat_buyers = 0;
    std::array<int64_t, kTierCount> tiers{};
    int64_t accepted = 0, duplicates = 0;
    DayHist members_by_last_active, members_by_joined;
    DayHist orders, community_orders, gmv_fen, refunds_fen, referred_joins;
  };

  const uint32_t shard_id_;
  const Config config_;
  UserMap users_;
  Aggregates agg_;
  int64_t max_ts_ = kNoTs;
  int32_t swept_day_ = kNoDay;

  std::vector<Entry*> dirty_;
  std::vector<Entry*> draining_dirty_;
  absl::flat_hash_map<int32_t, std::vector<Entry*>> timers_;
  std::vector<Entry*> sweep_work_;  // the day being swept, taken out of timers_
  int32_t sweep_work_day_ = kNoDay;
  size_t sweep_pos_ = 0;

  absl::flat_hash_map<Hash128, int32_t> seen_;  // event id hash -> event day
  absl::flat_hash_map<int32_t, std::vector<Hash128>> seen_by_day_;
  std::vector<std::pair<Hash128, int32_t>> new_seen_;
  std::vector<std::pair<Hash128, int32_t>> draining_seen_;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_SHARD_STATE_H_
