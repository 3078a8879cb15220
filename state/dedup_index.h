// DedupIndex: one shard's memory of the event ids it has accepted (SPEC §4),
// and the persisted form of the ids new since a checkpoint.
//
// Ids live in an exact in-memory map until it holds more than its limit; a
// spill then freezes them all into an immutable sorted IdRun in the store,
// keeping ~1.6 bytes per id in memory (a Bloom filter and block fences). A
// fresh id is checked against the map and each live run's filter; only a
// filter hit reads a block (through the IdRunSource).
//
// An id is remembered until both of its horizons have passed: event time
// (the shard's T is dedup_horizon_days past the day it arrived) and wall
// clock (dedup_horizon_days since it was accepted, by SetWallClock's time),
// so that re-sending a file or a whole backfill counts nothing twice however
// far T raced meanwhile. Ids are kept in buckets by arrival day; buckets are
// filled in day order and expire in day order, each once its day and the
// wall-clock time of its newest id are both past the horizon.
//
// Ownership: owned by its ShardState; the IdRunSource outlives it.
// Thread safety: confined — the shard's worker owns it. TakeNewSeen hands
// out a value the caller owns; what FreezeIdsForSpill hands out may be read
// on another thread until SpillDone (see there).
#ifndef TIERSTREAM_STATE_DEDUP_INDEX_H_
#define TIERSTREAM_STATE_DEDUP_INDEX_H_

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/chunked_vector.h"
#include "common/hash.h"
#include "common/smooth_map.h"
#include "common/status.h"
#include "common/time.h"
#include "state/id_run.h"
#include "state/seen_codec.h"

namespace tierstream::state {

// Where spilled event-id runs are read back from (the Store, in the pipeline).
class IdRunSource {
 public:
  virtual ~IdRunSource() = default;
  virtual Status ReadIdBlock(uint64_t run_no, uint32_t block, std::string* bytes) = 0;
};

class DedupIndex {
 public:
  // `runs` may be null when ids are never spilled.
  DedupIndex(int64_t utc_offset_ms, int32_t horizon_days, IdRunSource* runs)
      : utc_offset_ms_(utc_offset_ms), horizon_days_(horizon_days), runs_source_(runs) {}
  DedupIndex(const DedupIndex&) = delete;
  DedupIndex& operator=(const DedupIndex&) = delete;

  // The wall-clock time now (ms since the epoch); see ShardState.
  void SetWallClock(int64_t now_ms) { now_ms_ = now_ms; }
  int64_t wall_clock() const { return now_ms_; }

  // Records an id hash and returns true the first time it is seen; `max_ts`
  // is the shard's watermark (the id is kept from the later of its event's
  // day and the watermark's, and `arrival_day`). A spilled block that cannot
  // be read leaves the id fresh and its error for TakeIdError().
  bool MarkSeenHash(const Hash128& h, int64_t ts_ms, int32_t arrival_day, int64_t max_ts);
  Status TakeIdError() { return std::exchange(id_error_, Status::Ok()); }
  void Unmark(const Hash128& h) {
    // The day buckets and new_seen_ keep a stale entry; both are filtered by seen_.
    seen_.Erase(h);
  }
  size_t NewSeenMark() const { return new_seen_.size(); }
  void TruncateNewSeen(size_t mark) { new_seen_.Truncate(mark); }
  // Whether an event of `ts_ms` may be a re-send of a forgotten one.
  bool BeyondHorizon(int64_t ts_ms) const {
    return forgotten_through_day_ != kNoDay &&
           DayOf(ts_ms, utc_offset_ms_) <= forgotten_through_day_;
  }
  int32_t oldest_kept_day() const { return oldest_kept_day_; }
  int32_t forgotten_through_day() const { return forgotten_through_day_; }
  // Recovery: from the shard meta.
  void set_forgotten_through_day(int32_t day) { forgotten_through_day_ = day; }
  void Prefetch(const Hash128& h) const {
    seen_.Prefetch(h);
    // A fresh id is looked up in the frozen map and every run's filter too.
    if (!spilling_.empty()) spilling_.Prefetch(h);
    for (const IdRun& run : runs_) run.Prefetch(h);
  }
  // See ShardState::ExpireSeen.
  bool Expire(int32_t today, size_t budget);

  size_t count() const { return seen_.size() + spilling_.size() + spilled_ids_; }
  size_t spilled_ids() const { return spilled_ids_; }
  size_t id_runs() const { return runs_.size(); }
  uint64_t id_block_reads() const { return id_block_reads_; }
  void set_memory_id_limit(size_t ids) { memory_id_limit_ = ids; }
  bool WantsSpill() const {
    return runs_source_ != nullptr && !has_pending_run_ && seen_.size() > memory_id_limit_;
  }

  // ---- checkpoints and spills (the contracts are ShardState's)
  std::vector<std::pair<int32_t, int64_t>> BucketWalls() const {
    std::vector<std::pair<int32_t, int64_t>> walls;
    walls.reserve(seen_by_day_.size());
    for (const auto& [day, bucket] : seen_by_day_) walls.emplace_back(day, bucket.newest_wall_ms);
    return walls;
  }
  // The ids first seen since the last checkpoint, moved out with each day's
  // wall-clock time (their blobs' NewSeenIds::EncodeByDay): they are
  // forgotten here; CheckpointDone(ok, taken) takes them back on failure.
  NewSeenIds TakeNewSeen();
  const SmoothMap<Hash128, int32_t>& FreezeIdsForSpill(uint64_t covers_sub, uint64_t* run_no,
                                                       int64_t* max_wall_ms);
  void SpillDone(bool ok, IdRun* run, std::string descriptor);
  bool spilling() const { return has_pending_run_; }
  uint64_t next_run_no() const { return next_run_no_; }
  struct UnconfirmedRun {
    uint64_t run_no = 0;
    std::string descriptor;
    int32_t first_day = 0, last_day = 0;  // the arrival days of its ids
    uint64_t covers_sub = 0;              // seen blobs numbered up to this hold only its ids
  };
  template <typename Fn>
  void DrainUnconfirmedRuns(Fn&& fn) {
    for (const UnconfirmedRun& r : unconfirmed_runs_) fn(r);
    confirming_runs_.swap(unconfirmed_runs_);
    unconfirmed_runs_.clear();
  }
  template <typename Fn>
  void DrainExpiredRuns(Fn&& fn) {
    for (uint64_t r : expired_runs_) fn(r);
    draining_runs_.swap(expired_runs_);
    expired_runs_.clear();
  }
  // Forgets what the checkpoint took, or (!ok) takes it back to persist
  // again: `taken` is what TakeNewSeen gave it.
  void CheckpointDone(bool ok, NewSeenIds taken);

  // Recovery: a seen blob (seen_codec.h) of arrival day `day`.
  Status LoadSeen(int32_t day, std::string_view blob);
  Status LoadIdRun(std::string_view descriptor);

 private:
  bool Young(int64_t wall_ms) const {
    return wall_ms > now_ms_ - int64_t{horizon_days_} * kMsPerDay;
  }
  void RecordInBucket(int32_t day, const Hash128& h, int64_t wall_ms);

  const int64_t utc_offset_ms_;
  const int32_t horizon_days_;
  IdRunSource* const runs_source_;
  int64_t now_ms_ = 0;
  SmoothMap<Hash128, int32_t> seen_;  // event id hash -> arrival day
  // The ids of each arrival day and when the newest of them was recorded
  // (stale entries, whose id moved to a later day or was unmarked, are
  // filtered by seen_ on expiry).
  struct Bucket {
    ChunkedVector<Hash128> ids;
    int64_t newest_wall_ms = 0;
  };
  std::map<int32_t, Bucket> seen_by_day_;
  std::pair<int32_t, Bucket*> last_bucket_{kNoDay, nullptr};          // most ids go to one day
  std::vector<std::pair<int32_t, ChunkedVector<Hash128>>> expiring_;  // expired days not yet erased
  int32_t expire_today_ = kNoDay;
  int64_t expire_wall_s_ = INT64_MIN;
  ChunkedVector<std::pair<Hash128, int32_t>> new_seen_;
  // Spilled ids.
  size_t memory_id_limit_ = SIZE_MAX;
  std::vector<IdRun> runs_;
  size_t spilled_ids_ = 0;
  uint64_t next_run_no_ = 1;
  bool has_pending_run_ = false;  // a frozen map is being written as a run
  int32_t spilling_first_day_ = 0, spilling_last_day_ = 0;
  uint64_t spilling_covers_sub_ = 0;
  std::vector<UnconfirmedRun> unconfirmed_runs_;
  std::vector<UnconfirmedRun> confirming_runs_;
  SmoothMap<Hash128, int32_t> spilling_;  // frozen for the run being written
  int64_t spilling_wall_ms_ = 0;          // ... and when its newest id came
  std::vector<uint64_t> expired_runs_;
  std::vector<uint64_t> draining_runs_;
  int32_t oldest_kept_day_ = INT32_MIN;  // ids of earlier days have expired
  // The newest arrival day of an id ever forgotten (persisted in the meta).
  int32_t forgotten_through_day_ = kNoDay;
  Status id_error_;
  uint64_t id_block_reads_ = 0;
  std::string block_scratch_;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_DEDUP_INDEX_H_
