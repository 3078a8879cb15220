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
// Memory is bounded: users live in a slab of slots, and EvictClean() drops
// users that are persisted (clean) and were not touched since the previous
// pass (CLOCK), keeping their pending tier checks by the 64-bit hash of
// their id (about 40 bytes each, whatever the id's length). A user who is
// not resident is reloaded through the UserSource on her next event, or on
// her check, by the ids the source holds under that hash (a checkpoint
// hands the source each user's hash the first time it persists her).
//
// The duplicate index is bounded too: ids live in an exact in-memory map
// until it holds more than its limit; the next checkpoint then spills them
// all into an immutable sorted IdRun in the store, keeping ~1.6 bytes per id
// in memory (a Bloom filter and block fences). A fresh id is checked against
// the map and each live run's filter; only a filter hit reads a block.
//
// An id is remembered until both of its horizons have passed: event time
// (this shard's T is dedup_horizon_days past the day it arrived) and wall
// clock (dedup_horizon_days since it was accepted, by SetWallClock's time),
// so that re-sending a file or a whole backfill counts nothing twice however
// far T raced meanwhile. Ids are kept in buckets by arrival day; buckets are
// filled in day order and expire in day order, each once its day and the
// wall-clock time of its newest id are both past the horizon.
//
// Thread safety: confined — one pipeline worker owns a ShardState.
#ifndef TIERSTREAM_STATE_SHARD_STATE_H_
#define TIERSTREAM_STATE_SHARD_STATE_H_

#include <absl/container/flat_hash_map.h>
#include <absl/container/node_hash_map.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/chunked_vector.h"
#include "common/hash.h"
#include "common/status.h"
#include "ingest/event.h"
#include "state/config.h"
#include "state/id_run.h"
#include "state/kpis.h"
#include "state/user_state.h"
#include "state/warm_users.h"

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
// The profile of the user `user_id` whose state is `s`, as of day `today`
// under `config`: what GetProfile answers for her, also for a state read
// straight from the store.
Profile MakeProfile(std::string_view user_id, const UserState& s, int32_t today,
                    const Config& config);

// Where evicted users are reloaded from (the Store, in the pipeline).
class UserSource {
 public:
  virtual ~UserSource() = default;
  // Reads the persisted state of `user_id`; *found = false if she has none.
  virtual Status Load(std::string_view user_id, std::string* encoded, bool* found) = 0;
  // The ids of the persisted users whose hash (ShardState::HashOf) is one
  // of `hashes` (sorted, distinct) — usually one each, more when hashes
  // collide; at least every user a checkpoint's IndexSink was given with
  // one of them. Appends to *user_ids.
  virtual Status FindByHash(std::span<const uint64_t> hashes,
                            std::vector<std::string>* user_ids) = 0;
};

// Where spilled event-id runs are read back from (the Store, in the pipeline).
class IdRunSource {
 public:
  virtual ~IdRunSource() = default;
  virtual Status ReadIdBlock(uint64_t run_no, uint32_t block, std::string* bytes) = 0;
};

class ShardState {
 public:
  // `source` may be null when nothing is ever evicted (tests, benchmarks);
  // `runs` may be null when ids are never spilled.
  ShardState(uint32_t shard_id, const Config& config, UserSource* source = nullptr,
             IdRunSource* runs = nullptr);
  ShardState(const ShardState&) = delete;
  ShardState& operator=(const ShardState&) = delete;

  // ---- duplicates (SPEC §4)
  // The wall-clock time now (ms since the epoch): ids are remembered for the
  // horizon past it too. Set it before MarkSeen, ExpireSeen and checkpoints
  // (the pipeline reads its clock once per group; tests inject theirs).
  void SetWallClock(int64_t now_ms) { now_ms_ = now_ms; }
  int64_t wall_clock() const { return now_ms_; }
  // Records `id` (hashed with `seed`: events and referral credits use
  // different seeds) and returns true the first time it is seen. Ids are
  // remembered until this shard's event time is dedup_horizon_days past the
  // later of the event's day and its arrival, and dedup_horizon_days of wall
  // clock have passed since it was recorded.
  // `arrival_day` is day(T) when the event arrives (kNoDay before the first).
  // If a spilled block cannot be read, the id is treated as fresh and the
  // error is kept for TakeIdError(): the caller must then refuse the events.
  bool MarkSeen(std::string_view id, uint64_t seed, int64_t ts_ms, int32_t arrival_day = kNoDay);
  // The same, for an id already hashed with HashId128(id, seed).
  bool MarkSeenHash(const Hash128& h, int64_t ts_ms, int32_t arrival_day);
  Status TakeIdError() { return std::exchange(id_error_, Status::Ok()); }
  // Forgets an id recorded by MarkSeen whose event could not be made durable.
  // A caller that unmarks the ids of a run of events also truncates the
  // list of ids new since the checkpoint back to its mark from before them.
  void UnmarkSeen(std::string_view id, uint64_t seed);
  size_t NewSeenMark() const { return new_seen_.size(); }
  void TruncateNewSeen(size_t mark) { new_seen_.resize(std::min(mark, new_seen_.size())); }
  void CountDuplicate() { ++agg_.duplicates; }
  // A fresh event so old that its original, if one was ever accepted, may
  // have been forgotten already (its day is not after an expired bucket).
  bool BeyondHorizon(int64_t ts_ms) const {
    return forgotten_through_day_ != kNoDay &&
           DayOf(ts_ms, config_.utc_offset_ms) <= forgotten_through_day_;
  }
  // Counters of what the log records besides events (SPEC §5's
  // events_duplicate and events_rejected; events accepted beyond the horizon).
  void CountIngest(uint64_t duplicates, uint64_t rejected, uint64_t beyond_horizon) {
    agg_.duplicates += static_cast<int64_t>(duplicates);
    agg_.rejected += static_cast<int64_t>(rejected);
    agg_.beyond_horizon += static_cast<int64_t>(beyond_horizon);
  }
  int64_t events_beyond_horizon() const { return agg_.beyond_horizon; }
  // Ids of arrival days before this one have expired (persisted ids of those
  // days may be deleted).
  int32_t oldest_kept_day() const { return oldest_kept_day_; }

  // ---- prefetching: with millions of users every event's state is a
  // cache miss, so a caller working through many events announces the
  // coming ones in stages — the user's index entry ~12 events ahead, her
  // slot ~8 ahead (buckets = false), her newest day bucket ~4 ahead
  // (buckets = true), an event id's duplicate-index entry ~8 ahead. Hints
  // only: they change nothing.
  static uint64_t UserHash(std::string_view user_id) { return Hash64(user_id); }
  // The hash this shard keys users by (UserHash, or the test hook's).
  uint64_t HashOf(std::string_view user_id) const { return user_hash_(user_id); }
  // Tests: a weaker hash, to exercise users whose hashes collide.
  void set_user_hash_for_testing(uint64_t (*fn)(std::string_view)) { user_hash_ = fn; }
  void PrefetchUser(uint64_t user_hash) const;
  void PrefetchUserState(uint64_t user_hash, bool buckets) const;
  void PrefetchSeen(const Hash128& h) const {
    seen_.prefetch(h);
    // A fresh id is looked up in the frozen map and every run's filter too.
    if (!spilling_.empty()) spilling_.prefetch(h);
    for (const IdRun& run : runs_) run.Prefetch(h);
  }

  // ---- events
  // Applies an accepted event (own or referral credit). `today` = day(T),
  // with T already covering this event.
  void Apply(const ingest::Event& e, int32_t today);

  // ---- time
  // Re-evaluates users whose tier can change by `today`, at most `budget`
  // of them. Returns true when the shard is fully as of `today`.
  bool Sweep(int32_t today, size_t budget);
  int32_t swept_day() const { return swept_day_; }
  // Forgets event ids past both horizons as of `today` (this shard's day of
  // T) and the wall clock: they count as absent at once, and their memory is
  // freed up to `budget` ids per call. Returns true when nothing is left to
  // free; call it again (with the same or a later day) until then.
  bool ExpireSeen(int32_t today, size_t budget = SIZE_MAX);

  // ---- queries (REQUIRES: Sweep(today) completed for tier-based answers)
  // Not const: an evicted user is read back through the UserSource.
  bool GetProfile(std::string_view user_id, int32_t today, Profile* out);
  KpiPartial Kpis(int32_t today) const;

  // Residency (REQUIRES for EvictClean: the last checkpoint committed).
  size_t resident_users() const { return index_.size() + collided_.size(); }
  // Evicts clean, untouched users until at most `target` stay resident.
  size_t EvictClean(size_t target);
  // Reloads of evicted users, and how many of them came from the warm tier.
  uint64_t reloads() const { return reloads_; }
  uint64_t warm_reloads() const { return warm_reloads_; }
  // Memory for evicted users kept encoded (see WarmUsers); 0: none.
  void set_warm_memory(size_t bytes) { warm_.set_budget(bytes); }
  size_t warm_users() const { return warm_.size(); }
  size_t warm_bytes() const { return warm_.bytes(); }
  size_t seen_count() const { return seen_.size() + spilling_.size() + spilled_ids_; }
  size_t spilled_ids() const { return spilled_ids_; }
  size_t id_runs() const { return runs_.size(); }
  uint64_t id_block_reads() const { return id_block_reads_; }
  // Ids kept in the exact in-memory map before a checkpoint spills them
  // (SIZE_MAX: never; spilling also needs an IdRunSource).
  void set_memory_id_limit(size_t ids) { memory_id_limit_ = ids; }
  bool WantsSpill() const {
    return runs_source_ != nullptr && !has_pending_run_ && seen_.size() > memory_id_limit_;
  }
  size_t dirty_count() const { return dirty_.size(); }
  int64_t max_ts() const { return max_ts_; }

  // ---- persistence
  // Checkpointing is two-phase so that a failed write loses nothing: the
  // snapshot and DrainNewSeen hand out what changed since the last
  // checkpoint, then CheckpointDone(ok) forgets it, or on failure marks it
  // changed again.
  //
  // The snapshot of changed users is taken as of one moment without
  // stopping the shard for all of them (after a midnight that can be most of
  // its users): BeginSnapshot takes the set in O(1), SnapshotStep encodes it
  // in slices between events, and a user about to change before her turn is
  // encoded first (copy on write). Each reaches the sink once, exactly as she
  // was at BeginSnapshot, in no particular order (the store sorts them off
  // this thread). The sink is called on this thread until the snapshot ends.
  using SnapshotSink = std::function<void(std::string_view user_id, std::string_view encoded)>;
  // Called, before her record, for each user the snapshot persists for the
  // first time: the UserSource must find her by this hash once the
  // checkpoint is committed (pending checks of evicted users are kept by
  // hash). Without one, the source must find users by hash on its own.
  using IndexSink = std::function<void(uint64_t hash, std::string_view user_id)>;
  void BeginSnapshot(SnapshotSink sink, IndexSink index = nullptr);
  // Encodes up to `budget` users; returns true once the snapshot is complete.
  bool SnapshotStep(size_t budget);
  bool snapshotting() const { return snap_epoch_ != 0; }
  // The whole snapshot at once.
  template <typename Fn>
  void DrainDirty(Fn&& fn) {
    BeginSnapshot([&fn](std::string_view id, std::string_view bytes) { fn(id, bytes); });
    SnapshotStep(SIZE_MAX);
  }
  // When the newest id of each arrival day was recorded (for the seen blobs
  // of a checkpoint: their ids were recorded no later).
  std::vector<std::pair<int32_t, int64_t>> BucketWalls() const {
    std::vector<std::pair<int32_t, int64_t>> walls;
    walls.reserve(seen_by_day_.size());
    for (const auto& [day, bucket] : seen_by_day_) walls.emplace_back(day, bucket.newest_wall_ms);
    return walls;
  }
  // Hands out the ids first seen since the last checkpoint as (hash, day)
  // pairs, in no order. The caller may read them on any thread until
  // CheckpointDone (the committer groups them by day, off this thread).
  const std::vector<std::pair<Hash128, int32_t>>& DrainNewSeen() {
    // Unmarked ids were truncated away, expired ones erased by ExpireSeen.
    draining_seen_.swap(new_seen_);
    new_seen_.clear();
    return draining_seen_;
  }
  // Spilling runs beside checkpoints, not inside them (a bulk load would
  // otherwise write every dirty user once per spill). FreezeIdsForSpill
  // freezes every in-memory id for run *run_no and returns them; the map
  // starts over at once (ids marked meanwhile go to the new map, the frozen
  // ones are still consulted). The caller — on any thread, reading the
  // frozen map only — builds the run with IdRun::Build and writes its blocks
  // (not its descriptor), then hands it to SpillDone(true, &run, descriptor);
  // SpillDone(false) takes the ids back (to be persisted by the next checkpoint). A spilled run
  // answers at once and becomes durable with the next checkpoint, which writes its descriptor and
  // deletes the seen blobs it covers (DrainUnconfirmedRuns): those of its days written before the
  // freeze, i.e. with a blob number <= `covers_sub`, the caller's counter of blobs at the freeze.
  // Blocks of a run whose descriptor never committed are orphans: recovery deletes them (every run
  // numbered from next_run_no() on).
  // *max_wall_ms: when the newest of them was recorded (the run's
  // IdRun::set_max_wall_ms).
  // REQUIRES: no checkpoint in flight (its blobs would race covers_sub), and
  // none may start until SpillDone: the frozen ids new since the last
  // checkpoint are in no seen blob until the run's descriptor commits.
  const absl::flat_hash_map<Hash128, int32_t>& FreezeIdsForSpill(uint64_t covers_sub,
                                                                 uint64_t* run_no,
                                                                 int64_t* max_wall_ms);
  void SpillDone(bool ok, IdRun* run, std::string descriptor);
  bool spilling() const { return has_pending_run_; }
  uint64_t next_run_no() const { return next_run_no_; }
  // A spilled run whose descriptor is not yet in the store.
  struct UnconfirmedRun {
    uint64_t run_no = 0;
    std::string descriptor;
    int32_t first_day = 0, last_day = 0;  // the arrival days of its ids
    uint64_t covers_sub = 0;              // seen blobs numbered up to this hold only its ids
  };
  // Calls fn(run) for each spilled run not yet confirmed; the checkpoint
  // that writes them confirms them (CheckpointDone).
  template <typename Fn>
  void DrainUnconfirmedRuns(Fn&& fn) {
    for (const UnconfirmedRun& r : unconfirmed_runs_) fn(r);
    confirming_runs_.swap(unconfirmed_runs_);
    unconfirmed_runs_.clear();
  }
  // Calls fn(run_no) for each run past the horizon whose deletion is not yet persisted.
  template <typename Fn>
  void DrainExpiredRuns(Fn&& fn) {
    for (uint64_t r : expired_runs_) fn(r);
    draining_runs_.swap(expired_runs_);
    expired_runs_.clear();
  }
  void CheckpointDone(bool ok);
  // Shard-level aggregates and counters, swept day and max ts, plus the
  // caller's log position.
  void EncodeMeta(uint64_t log_seq, std::string* out) const;
  Status DecodeMeta(std::string_view in, uint64_t* log_seq);
  // The persisted form of ids first seen since a checkpoint, one blob per
  // arrival day: a header with a wall-clock time no id in it was recorded
  // after (its day's newest, BucketWalls), then 16 bytes per id hash.
  static void BeginSeenBlob(int64_t wall_ms, std::string* out);
  static void AppendSeenId(const Hash128& h, std::string* out);
  // Recovery: makes a persisted user resident, or (resident = false) only
  // registers her pending tier check (by hash) so that the sweep reloads her.
  // REQUIRES: the UserSource finds every persisted user by hash.
  Status LoadUser(std::string_view user_id, std::string_view encoded, bool resident);
  Status LoadSeen(int32_t day, std::string_view blob);
  Status LoadIdRun(std::string_view descriptor);
  // After loading: schedules every user's next tier check.
  void RebuildTimers();
  // After a change of tier rules: re-evaluates resident users (returns how
  // many changed tier), and a persisted user who is not resident (true and
  // *updated set when her tier changed; the histogram is adjusted).
  uint64_t RetierResident();
  bool RetierEvicted(std::string_view user_id, std::string_view encoded, std::string* updated);

 private:
  struct Slot {
    std::string id;  // empty when free
    UserState state;
    uint32_t generation = 0;  // bumped on eviction: stale timer refs skip it
    uint32_t epoch = 0;       // the checkpoint epoch she was changed in; 0: clean
    bool touched = false;     // CLOCK reference bit
    bool indexed = false;     // the source finds her by hash (she was persisted)
  };
  struct TimerRef {
    uint32_t slot;
    uint32_t generation;
  };

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
  // The resident slot of `user_id`, reloading her if evicted; creates her if
  // `create` and she is unknown. Returns UINT32_MAX if absent.
  uint32_t Find(std::string_view user_id, bool create);
  uint32_t Lookup(std::string_view user_id) const;  // UINT32_MAX if not resident
  void IndexInsert(uint32_t slot);
  void IndexErase(uint32_t slot);
  uint32_t NewSlot(std::string_view user_id);
  // Re-evaluates the tier at `today`, updates the histogram, reschedules.
  void Reconcile(uint32_t slot, int32_t today);
  void Schedule(uint32_t slot, int32_t day);
  // Pending checks of users who are not decoded, by hash: of cold users
  // (reloaded from the store) and of warm ones. A check of the day being
  // swept joins the sweep's own list (the day's list has left its map).
  void RegisterEvictedCheck(uint64_t hash, int32_t day);
  void RegisterWarmCheck(uint64_t hash, int32_t day);
  // Call before any change to a user: copy on write for the snapshot.
  void Touch(uint32_t slot) {
    if (slots_[slot].epoch == snap_epoch_ && snap_epoch_ != 0) SnapshotUser(slot);
  }
  void SnapshotUser(uint32_t slot);
  void MarkDirty(uint32_t slot);

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
    int64_t accepted = 0, duplicates = 0, rejected = 0, beyond_horizon = 0;
    DayHist members_by_last_active, members_by_joined;
    DayHist orders, community_orders, gmv_fen, refunds_fen, referred_joins;
  };

  const uint32_t shard_id_;
  const Config config_;
  UserSource* const source_;
  ChunkedVector<Slot> slots_;  // slots never move, so collided_ may view their ids
  std::vector<uint32_t> free_slots_;
  // user_id -> slot, keyed by UserHash so that a lookup reads no id until
  // the slot itself; the rare user whose hash another resident user already
  // has is indexed by id in collided_.
  absl::flat_hash_map<uint64_t, uint32_t> index_;
  absl::flat_hash_map<absl::string_view, uint32_t> collided_;
  uint64_t (*user_hash_)(std::string_view) = &UserHash;
  bool evicted_any_ = false;  // whether a miss must consult the source
  size_t clock_hand_ = 0;
  uint64_t reloads_ = 0;
  uint64_t warm_reloads_ = 0;
  WarmUsers warm_;  // evicted users kept encoded in memory
  std::string warm_buf_;
  Aggregates agg_;
  int64_t max_ts_ = kNoTs;
  int32_t swept_day_ = kNoDay;

  std::vector<uint32_t> dirty_;           // changed in epoch_
  std::vector<uint32_t> draining_dirty_;  // the snapshot's users, until CheckpointDone
  uint32_t epoch_ = 1;
  uint32_t snap_epoch_ = 0;  // the epoch being snapshot; 0: none
  size_t snap_pos_ = 0;
  SnapshotSink snap_sink_;
  IndexSink snap_index_sink_;
  std::vector<uint32_t> snap_indexed_;  // users first persisted by the snapshot in flight
  std::string snap_buf_;
  absl::flat_hash_map<int32_t, std::vector<TimerRef>> timers_;
  // Pending checks of users who are neither resident nor warm, by day, and
  // the day each hash is due (the earliest of its users'; entries of other
  // days are stale). By hash, not id: ~40 bytes a user instead of two
  // copies of her id (~470 bytes with 128-byte ids).
  absl::flat_hash_map<int32_t, std::vector<uint64_t>> evicted_timers_;
  absl::flat_hash_map<uint64_t, int32_t> evicted_due_;
  // Pending checks of warm users by day, by hash (stale unless the warm
  // entry's due day is still that day).
  absl::flat_hash_map<int32_t, std::vector<uint64_t>> warm_timers_;
  std::vector<uint64_t> sweep_warm_;
  size_t sweep_warm_pos_ = 0;
  std::vector<TimerRef> sweep_work_;  // the day being swept, taken out of timers_
  std::vector<uint64_t> sweep_evicted_;
  std::vector<uint64_t> sweep_hashes_;  // scratch: the due hashes of a slice
  std::vector<std::string> sweep_ids_;  // ... and their users
  int32_t sweep_work_day_ = kNoDay;
  size_t sweep_pos_ = 0;
  size_t sweep_evicted_pos_ = 0;

  bool Young(int64_t wall_ms) const {
    return wall_ms > now_ms_ - int64_t{config_.dedup_horizon_days} * kMsPerDay;
  }
  void RecordInBucket(int32_t day, const Hash128& h, int64_t wall_ms);

  int64_t now_ms_ = 0;
  absl::flat_hash_map<Hash128, int32_t> seen_;  // event id hash -> arrival day
  // The ids of each arrival day and when the newest of them was recorded
  // (stale entries, whose id moved to a later day or was unmarked, are
  // filtered by seen_ on expiry).
  struct Bucket {
    std::vector<Hash128> ids;
    int64_t newest_wall_ms = 0;
  };
  std::map<int32_t, Bucket> seen_by_day_;
  std::pair<int32_t, Bucket*> last_bucket_{kNoDay, nullptr};        // most ids go to one day
  std::vector<std::pair<int32_t, std::vector<Hash128>>> expiring_;  // expired days not yet erased
  int32_t expire_today_ = kNoDay;
  int64_t expire_wall_s_ = INT64_MIN;
  std::vector<std::pair<Hash128, int32_t>> new_seen_;
  std::vector<std::pair<Hash128, int32_t>> draining_seen_;
  // Spilled ids.
  IdRunSource* const runs_source_;
  size_t memory_id_limit_ = SIZE_MAX;
  std::vector<IdRun> runs_;
  size_t spilled_ids_ = 0;
  uint64_t next_run_no_ = 1;
  bool has_pending_run_ = false;  // a frozen map is being written as a run
  int32_t spilling_first_day_ = 0, spilling_last_day_ = 0;
  uint64_t spilling_covers_sub_ = 0;
  std::vector<UnconfirmedRun> unconfirmed_runs_;
  std::vector<UnconfirmedRun> confirming_runs_;
  absl::flat_hash_map<Hash128, int32_t> spilling_;  // frozen for the run being written
  int64_t spilling_wall_ms_ = 0;                    // ... and when its newest id came
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

#endif  // TIERSTREAM_STATE_SHARD_STATE_H_
