// ShardState: the users one shard owns, its KPI aggregates, its duplicate
// index and its timer index of upcoming tier changes — a façade over the
// parts that hold them, which forwards to them inline:
//
//   UserTable        slots, index, warm tier, eviction, reloads (user_table.h)
//   DedupIndex       event ids by arrival day, spilled id runs (dedup_index.h)
//   TierTimers       day -> users whose tier can change that day (tier_timers.h)
//   ShardAggregates  counters, day histograms, KPIs, meta codec (shard_aggregates.h)
//   ShardCheckpoint  dirty users and the copy-on-write snapshot (shard_checkpoint.h)
//
// What it does itself is what needs several of them: applying an event (the
// user, her aggregates, her next check), the sweep as T crosses a day, and
// a checkpoint's and a recovery's order of steps (shard_checkpoint.cc).
//
// All of SPEC §3–§5 that depends on a shard's users is maintained here
// incrementally; nothing scans all users but recovery's RebuildTimers and
// RetierResident. A user who is not resident is reloaded through the
// UserSource on her next event (PrepareUser, before the group is made
// durable), query or check; a reload that fails is an error, never a blank
// user.
//
// Thread safety: confined — one pipeline worker owns a ShardState.
#ifndef TIERSTREAM_STATE_SHARD_STATE_H_
#define TIERSTREAM_STATE_SHARD_STATE_H_

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "common/status.h"
#include "ingest/event.h"
#include "state/config.h"
#include "state/dedup_index.h"
#include "state/id_run.h"
#include "state/kpis.h"
#include "state/profile.h"
#include "state/seen_codec.h"
#include "state/shard_aggregates.h"
#include "state/shard_checkpoint.h"
#include "state/tier_change.h"
#include "state/tier_timers.h"
#include "state/user_state.h"
#include "state/user_table.h"

namespace tierstream::state {

class ShardState {
 public:
  // `source` may be null when nothing is ever evicted (tests, benchmarks);
  // `runs` may be null when ids are never spilled.
  ShardState(uint32_t shard_id, const Config& config, UserSource* source = nullptr,
             IdRunSource* runs = nullptr)
      : shard_id_(shard_id),
        config_(config),
        users_(source),
        dedup_(config.utc_offset_ms, config.dedup_horizon_days, runs) {}
  ShardState(const ShardState&) = delete;
  ShardState& operator=(const ShardState&) = delete;

  // ---- duplicates (SPEC §4)
  // The wall-clock time now (ms since the epoch): ids are remembered for the
  // horizon past it too. Set it before MarkSeen, ExpireSeen and checkpoints
  // (the pipeline reads its clock once per group; tests inject theirs).
  void SetWallClock(int64_t now_ms) { dedup_.SetWallClock(now_ms); }
  int64_t wall_clock() const { return dedup_.wall_clock(); }
  // Records `id` (hashed with `seed`: events and referral credits use
  // different seeds) and returns true the first time it is seen. Ids are
  // remembered until this shard's event time is dedup_horizon_days past the
  // later of the event's day and its arrival, and dedup_horizon_days of wall
  // clock have passed since it was recorded.
  // `arrival_day` is day(T) when the event arrives (kNoDay before the first).
  // If a spilled block cannot be read, the id is treated as fresh and the
  // error is kept for TakeIdError(): the caller must then refuse the events.
  bool MarkSeen(std::string_view id, uint64_t seed, int64_t ts_ms, int32_t arrival_day = kNoDay) {
    return MarkSeenHash(HashId128(id, seed), ts_ms, arrival_day);
  }
  // The same, for an id already hashed with HashId128(id, seed).
  bool MarkSeenHash(const Hash128& h, int64_t ts_ms, int32_t arrival_day) {
    return dedup_.MarkSeenHash(h, ts_ms, arrival_day, max_ts_);
  }
  Status TakeIdError() { return dedup_.TakeIdError(); }
  // Forgets an id recorded by MarkSeen whose event could not be made durable.
  // A caller that unmarks the ids of a run of events also truncates the
  // list of ids new since the checkpoint back to its mark from before them.
  void UnmarkSeen(std::string_view id, uint64_t seed) { dedup_.Unmark(HashId128(id, seed)); }
  size_t NewSeenMark() const { return dedup_.NewSeenMark(); }
  void TruncateNewSeen(size_t mark) { dedup_.TruncateNewSeen(mark); }
  void CountDuplicate() { ++agg_.duplicates; }
  // A fresh event so old that its original, if one was ever accepted, may
  // have been forgotten already (its day is not after an expired bucket).
  bool BeyondHorizon(int64_t ts_ms) const { return dedup_.BeyondHorizon(ts_ms); }
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
  int32_t oldest_kept_day() const { return dedup_.oldest_kept_day(); }

  // ---- prefetching: with millions of users every event's state is a
  // cache miss, so a caller working through many events announces the
  // coming ones in stages — the user's index entry ~12 events ahead, her
  // slot ~8 ahead (buckets = false), her newest day bucket ~4 ahead
  // (buckets = true), an event id's duplicate-index entry ~8 ahead. Hints
  // only: they change nothing.
  static uint64_t UserHash(std::string_view user_id) { return UserTable::UserHash(user_id); }
  // The hash this shard keys users by (UserHash, or the test hook's).
  uint64_t HashOf(std::string_view user_id) const { return users_.HashOf(user_id); }
  // Tests: a weaker hash, to exercise users whose hashes collide.
  void set_user_hash_for_testing(uint64_t (*fn)(std::string_view)) {
    users_.set_user_hash_for_testing(fn);
  }
  void PrefetchUser(uint64_t user_hash) const { users_.PrefetchUser(user_hash); }
  void PrefetchUserState(uint64_t user_hash, bool buckets) const {
    users_.PrefetchUserState(user_hash, buckets);
  }
  void PrefetchSeen(const Hash128& h) const { dedup_.Prefetch(h); }

  // ---- events
  // Makes `user_id` resident if she was evicted, reading her back from the
  // warm tier or the UserSource, so that Apply of her event cannot fail: a
  // caller that logs events before applying them calls it for each of them
  // first and, on error, refuses them (nothing is applied or logged).
  // Cheap when nobody was ever evicted.
  Status PrepareUser(std::string_view user_id) {
    if (!users_.may_reload()) return Status::Ok();
    return PrepareUserSlow(user_id);
  }
  // Applies an accepted event (own or referral credit). `today` = day(T),
  // with T already covering this event; `t_ms` is T itself (the time a tier
  // change it causes took effect; kNoTs: the shard's newest ts). If her user
  // was evicted and cannot be read back (no PrepareUser before), the event is
  // not applied and the error is kept for TakeUserError().
  void Apply(const ingest::Event& e, int32_t today, int64_t t_ms = kNoTs);
  // The first reload that failed in Apply, GetProfile or Sweep since the
  // last call (a failed sweep keeps its checks and returns false).
  Status TakeUserError() { return std::exchange(user_error_, Status::Ok()); }

  // ---- time
  // Re-evaluates users whose tier can change by `today`, at most `budget`
  // of them. Returns true when the shard is fully as of `today`.
  bool Sweep(int32_t today, size_t budget);
  // Forgets event ids past both horizons as of `today` (this shard's day of
  // T) and the wall clock: they count as absent at once, and their memory is
  // freed up to `budget` ids per call. Returns true when nothing is left to
  // free; call it again (with the same or a later day) until then.
  bool ExpireSeen(int32_t today, size_t budget = SIZE_MAX) { return dedup_.Expire(today, budget); }

  // ---- tier changes (the change feed)
  // While on, every change of a user's tier — by an event (Apply), by time
  // (Sweep, ReplayTimeChange) or by new rules (Retier*) — is numbered (the
  // shard's shard_seq, her seq) and kept until TakeChanges().
  void set_record_changes(bool on) { record_changes_ = on; }
  bool record_changes() const { return record_changes_; }
  // Appends the changes kept since the last call to *out, in order.
  void TakeChanges(std::vector<TierChange>* out) {
    out->insert(out->end(), std::make_move_iterator(changes_.begin()),
                std::make_move_iterator(changes_.end()));
    changes_.clear();
  }
  bool has_changes() const { return !changes_.empty(); }
  size_t pending_changes() const { return changes_.size(); }
  // The shard_seq of the last change (persisted with the meta).
  uint64_t change_seq() const { return change_seq_; }
  // Where the shard stands in its input (the Kafka mode): what the next
  // meta records, and what DecodeMeta read back.
  const InputPosition& input_position() const { return input_position_; }
  void AdvanceInput(const InputPosition& p) { input_position_.Merge(p); }
  // The Kafka mode's changelog: the owner generation the next meta records,
  // and the number of the last checkpoint (NextCheckpoint: of the one being
  // taken); both as DecodeMeta read them back.
  uint64_t owner_generation() const { return owner_generation_; }
  void set_owner_generation(uint64_t g) { owner_generation_ = g; }
  uint64_t checkpoint_number() const { return checkpoint_number_; }
  // Forward marks by source partition (input_position.h).
  const std::vector<uint64_t>& forward_marks() const { return forward_marks_; }
  void AdvanceForward(const ForwardMark& m) {
    if (m.source >= forward_marks_.size()) forward_marks_.resize(m.source + 1, 0);
    forward_marks_[m.source] = std::max(forward_marks_[m.source], m.next);
  }
  uint64_t NextCheckpoint() { return ++checkpoint_number_; }
  // Recovery: re-does a change the sweep made (a journaled time change):
  // re-evaluates `user_id` at `day`, which gives the same change again.
  Status ReplayTimeChange(std::string_view user_id, int32_t day);
  // The cause Retier* give their changes: the new rules, in effect at T.
  void SetRulesCause(std::string rules, int64_t t_ms) {
    rules_cause_ = std::move(rules);
    rules_at_ms_ = t_ms;
  }

  // ---- queries (REQUIRES: Sweep(today) completed for tier-based answers)
  // Not const: an evicted user is read back through the UserSource (false,
  // and the error kept for TakeUserError(), if she cannot be).
  bool GetProfile(std::string_view user_id, int32_t today, Profile* out);
  // Her state, read the way GetProfile reads it, for reading only until the
  // next call on this shard; null if she is unknown or could not be read
  // back (the error kept for TakeUserError()).
  const UserState* GetUserState(std::string_view user_id);
  KpiPartial Kpis(int32_t today) const { return agg_.Kpis(today); }

  // Residency (REQUIRES for EvictClean: the last checkpoint committed).
  size_t resident_users() const { return users_.resident(); }
  // Evicts clean, untouched users until at most `target` stay resident.
  size_t EvictClean(size_t target) { return users_.EvictClean(target, &timers_); }
  // Reloads of evicted users, and how many of them came from the warm tier.
  uint64_t reloads() const { return users_.reloads(); }
  uint64_t warm_reloads() const { return users_.warm_reloads(); }
  // Memory for evicted users kept encoded (see WarmUsers); 0: none.
  void set_warm_memory(size_t bytes) { users_.warm().set_budget(bytes); }
  size_t warm_users() const { return users_.warm().size(); }
  size_t warm_bytes() const { return users_.warm().bytes(); }
  size_t seen_count() const { return dedup_.count(); }
  size_t spilled_ids() const { return dedup_.spilled_ids(); }
  size_t id_runs() const { return dedup_.id_runs(); }
  uint64_t id_block_reads() const { return dedup_.id_block_reads(); }
  // Ids kept in the exact in-memory map before a checkpoint spills them
  // (SIZE_MAX: never; spilling also needs an IdRunSource).
  void set_memory_id_limit(size_t ids) { dedup_.set_memory_id_limit(ids); }
  bool WantsSpill() const { return dedup_.WantsSpill(); }
  size_t dirty_count() const { return checkpoint_.dirty_count(); }
  int64_t max_ts() const { return max_ts_; }

  // ---- persistence
  // Checkpointing is two-phase so that a failed write loses nothing: the
  // snapshot and TakeNewSeen hand out what changed since the last
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
  using SnapshotSink = ShardCheckpoint::SnapshotSink;
  // Called, before her record, for each user the snapshot persists for the
  // first time: the UserSource must find her by this hash once the
  // checkpoint is committed (pending checks of evicted users are kept by
  // hash). Without one, the source must find users by hash on its own.
  using IndexSink = ShardCheckpoint::IndexSink;
  void BeginSnapshot(SnapshotSink sink, IndexSink index = nullptr) {
    checkpoint_.BeginSnapshot(std::move(sink), std::move(index));
  }
  // Encodes up to `budget` users; returns true once the snapshot is complete.
  bool SnapshotStep(size_t budget) { return checkpoint_.Step(users_, budget); }
  // The whole snapshot at once.
  template <typename Fn>
  void DrainDirty(Fn&& fn) {
    BeginSnapshot([&fn](std::string_view id, std::string_view bytes) { fn(id, bytes); });
    SnapshotStep(SIZE_MAX);
  }
  // Moves out the ids first seen since the last checkpoint, with the
  // wall-clock times their blobs carry: the caller owns them and may encode
  // them on any thread (NewSeenIds::EncodeByDay, one blob per day), and
  // hands them back with CheckpointDone(ok, taken).
  NewSeenIds TakeNewSeen() { return dedup_.TakeNewSeen(); }
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
  const SmoothMap<Hash128, int32_t>& FreezeIdsForSpill(uint64_t covers_sub, uint64_t* run_no,
                                                       int64_t* max_wall_ms) {
    return dedup_.FreezeIdsForSpill(covers_sub, run_no, max_wall_ms);
  }
  void SpillDone(bool ok, IdRun* run, std::string descriptor) {
    dedup_.SpillDone(ok, run, std::move(descriptor));
  }
  bool spilling() const { return dedup_.spilling(); }
  uint64_t next_run_no() const { return dedup_.next_run_no(); }
  // A spilled run whose descriptor is not yet in the store.
  using UnconfirmedRun = DedupIndex::UnconfirmedRun;
  // Calls fn(run) for each spilled run not yet confirmed; the checkpoint
  // that writes them confirms them (CheckpointDone).
  template <typename Fn>
  void DrainUnconfirmedRuns(Fn&& fn) {
    dedup_.DrainUnconfirmedRuns(std::forward<Fn>(fn));
  }
  // Calls fn(run_no) for each run past the horizon whose deletion is not yet persisted.
  template <typename Fn>
  void DrainExpiredRuns(Fn&& fn) {
    dedup_.DrainExpiredRuns(std::forward<Fn>(fn));
  }
  // `taken`: what TakeNewSeen gave this checkpoint (kept again if !ok).
  void CheckpointDone(bool ok, NewSeenIds taken);
  // Shard-level aggregates and counters, swept day and max ts, plus the
  // caller's log position.
  void EncodeMeta(uint64_t log_seq, std::string* out) const;
  Status DecodeMeta(std::string_view in, uint64_t* log_seq);
  // Recovery: makes a persisted user resident, or (resident = false) only
  // registers her pending tier check (by hash) so that the sweep reloads her.
  // REQUIRES: the UserSource finds every persisted user by hash.
  Status LoadUser(std::string_view user_id, std::string_view encoded, bool resident);
  Status LoadSeen(int32_t day, std::string_view blob) { return dedup_.LoadSeen(day, blob); }
  Status LoadIdRun(std::string_view descriptor) { return dedup_.LoadIdRun(descriptor); }
  // After loading: schedules every user's next tier check.
  void RebuildTimers();
  // After a change of tier rules: re-evaluates resident users (returns how
  // many changed tier), and a persisted user who is not resident (true and
  // *updated set when her tier changed; the histogram is adjusted).
  uint64_t RetierResident();
  bool RetierEvicted(std::string_view user_id, std::string_view encoded, std::string* updated);

 private:
  // The resident slot of `user_id`, reloading her if evicted; creates her if
  // `create` and she is unknown. Returns UserTable::kAbsent if absent, or if
  // she could not be read back (*error says why).
  uint32_t Find(std::string_view user_id, bool create, Status* error);
  Status PrepareUserSlow(std::string_view user_id);
  void KeepUserError(const Status& s) {
    if (user_error_.ok() && !s.ok()) user_error_ = s;
  }
  // Re-evaluates the tier at `today`, updates the histogram, reschedules;
  // a change is kept (record_changes_) with the cause in cause_.
  void Reconcile(uint32_t slot, int32_t today);
  // Numbers and keeps a change of `s` (her tier already moved from `from`).
  void RecordChange(std::string_view user_id, UserState* s, Tier from);
  struct Cause {
    ChangeCause kind = ChangeCause::kTime;
    std::string_view ref;  // the event id being applied, or the rules
    int64_t at_ms = 0;
  };
  void Schedule(uint32_t slot, int32_t day) {
    UserSlot& s = users_.slot(slot);
    if (day == s.state.next_check_day) return;
    s.state.next_check_day = day;
    if (day != kNoDay) timers_.AddResident(day, TimerRef{slot, s.generation});
  }
  int32_t NextCheck(const UserState& s, int32_t today) const {
    return NextCheckDay(s, today, config_.utc_offset_ms, config_.rules);
  }

  const uint32_t shard_id_;
  const Config config_;
  UserTable users_;
  DedupIndex dedup_;
  TierTimers timers_;
  ShardAggregates agg_;
  ShardCheckpoint checkpoint_;
  int64_t max_ts_ = kNoTs;
  // Users PrepareUser found persisted nowhere: Apply creates them without
  // asking the store again (she can only come to exist by that Apply).
  absl::flat_hash_set<std::string> prepared_absent_;
  Status user_error_;
  std::vector<std::string> sweep_ids_;  // scratch: the users of due hashes
  bool record_changes_ = false;
  uint64_t change_seq_ = 0;
  InputPosition input_position_;
  uint64_t owner_generation_ = 0;
  uint64_t checkpoint_number_ = 0;
  std::vector<uint64_t> forward_marks_;
  Cause cause_;
  std::vector<TierChange> changes_;
  std::string rules_cause_;
  int64_t rules_at_ms_ = 0;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_SHARD_STATE_H_
