// TierTimers: one shard's index of upcoming tier checks, `day -> [user]`,
// and the progress of the sweep that works through it as T crosses days.
//
// For each user it holds the first future day on which her tier can change
// with no new event (SPEC §3: an interaction leaves the 7-day window, spend
// leaves the 30-day window, day 30 after joining). Resident users are held by
// slot (a TimerRef, invalidated lazily by the slot's generation and her
// next_check_day); users who are not decoded by the 64-bit hash of their id:
// warm ones (stale unless the warm entry is still due that day) and cold ones
// (one entry per hash, due at the earliest of its users' days, ~40 bytes a
// user whatever the id's length). A check registered for a day being swept
// joins that sweep.
//
// It decides nothing about tiers: ShardState::Sweep takes the due work from
// it and re-evaluates the users.
//
// Ownership: owned by its ShardState. Thread safety: confined.
#ifndef TIERSTREAM_STATE_TIER_TIMERS_H_
#define TIERSTREAM_STATE_TIER_TIMERS_H_

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/chunked_vector.h"
#include "common/time.h"

namespace tierstream::state {

// A resident user's check: her slot, as of its generation.
struct TimerRef {
  uint32_t slot;
  uint32_t generation;
};

class TierTimers {
 public:
  TierTimers() = default;
  TierTimers(const TierTimers&) = delete;
  TierTimers& operator=(const TierTimers&) = delete;

  // The last day whose checks were taken up by the sweep (kNoDay before the
  // first event); set by recovery from the shard meta.
  int32_t swept_day() const { return swept_day_; }
  void set_swept_day(int32_t day) { swept_day_ = day; }
  // Whether the swept day still has checks left (in slices).
  bool DayInProgress() const { return HasResidentWork() || HasEvictedWork() || HasWarmWork(); }

  // ---- registering checks
  void AddResident(int32_t day, TimerRef ref) { timers_[day].push_back(ref); }
  void AddEvicted(uint64_t hash, int32_t day);
  void AddWarm(uint64_t hash, int32_t day);

  // ---- the sweep of the day swept_day(), in this order:
  bool HasResidentWork() const { return sweep_pos_ < sweep_work_.size(); }
  TimerRef NextResident() { return sweep_work_[sweep_pos_++]; }  // REQUIRES: HasResidentWork()
  bool HasEvictedWork() const { return sweep_evicted_pos_ < sweep_evicted_.size(); }
  // The next (up to `max`) cold hashes still due by the day swept, sorted;
  // each is done with (give it back with AddEvicted if its users could not
  // be checked).
  std::span<const uint64_t> TakeDueEvicted(size_t max);
  bool HasWarmWork() const { return sweep_warm_pos_ < sweep_warm_.size(); }
  // The next warm hash, or false when none is left; *hash may be stale
  // (check the warm entry's due day against work_day()).
  bool NextWarm(uint64_t* hash) {
    if (sweep_warm_pos_ >= sweep_warm_.size()) return false;
    *hash = sweep_warm_[sweep_warm_pos_++];
    return true;
  }
  // The day whose checks are being swept (kNoDay before any).
  int32_t work_day() const { return sweep_work_day_; }
  // Once the swept day has no work left: takes up the next day's checks and
  // returns true, or returns false if the sweep has reached `today`.
  bool AdvanceDay(int32_t today);

 private:
  int32_t swept_day_ = kNoDay;
  absl::flat_hash_map<int32_t, ChunkedVector<TimerRef>> timers_;  // chunked: see ChunkedVector
  // Pending checks of users who are neither resident nor warm, by day, and
  // the day each hash is due (the earliest of its users'; entries of other
  // days are stale). By hash, not id: ~40 bytes a user instead of two
  // copies of her id (~470 bytes with 128-byte ids).
  absl::flat_hash_map<int32_t, ChunkedVector<uint64_t>> evicted_timers_;
  absl::flat_hash_map<uint64_t, int32_t> evicted_due_;
  // Pending checks of warm users by day, by hash.
  absl::flat_hash_map<int32_t, ChunkedVector<uint64_t>> warm_timers_;
  // The day being swept, taken out of the maps.
  int32_t sweep_work_day_ = kNoDay;
  ChunkedVector<TimerRef> sweep_work_;
  size_t sweep_pos_ = 0;
  ChunkedVector<uint64_t> sweep_evicted_;
  size_t sweep_evicted_pos_ = 0;
  ChunkedVector<uint64_t> sweep_warm_;
  size_t sweep_warm_pos_ = 0;
  std::vector<uint64_t> due_hashes_;  // scratch: TakeDueEvicted's answer
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_TIER_TIMERS_H_
