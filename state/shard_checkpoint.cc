// A shard's checkpoints and recovery: the snapshot of its changed users,
// the shard meta, confirming or taking back what a checkpoint took, and
// loading it all again at a start (then re-evaluating tiers if the rules
// changed).
#include "state/shard_checkpoint.h"

#include <algorithm>
#include <utility>

#include "state/shard_state.h"

namespace tierstream::state {

// ---- ShardCheckpoint --------------------------------------------------------

void ShardCheckpoint::BeginSnapshot(SnapshotSink sink, IndexSink index) {
  snap_epoch_ = epoch_++;
  snap_sink_ = std::move(sink);
  snap_index_sink_ = std::move(index);
  snap_indexed_.clear();
  draining_dirty_.swap(dirty_);
  dirty_.clear();
  snap_pos_ = 0;
}

void ShardCheckpoint::SnapshotUser(UserTable& users, uint32_t slot) {
  UserSlot& s = users.slot(slot);
  if (!s.indexed && snap_index_sink_) {
    snap_index_sink_(users.HashOf(s.id), s.id);
    s.indexed = true;  // taken back if the checkpoint fails
    snap_indexed_.push_back(slot);
  }
  snap_buf_.clear();
  EncodeUserState(s.state, &snap_buf_);
  snap_sink_(std::string_view(s.id), std::string_view(snap_buf_));
  s.epoch = 0;
}

bool ShardCheckpoint::Step(UserTable& users, size_t budget) {
  if (snap_epoch_ == 0) return true;
  const std::vector<uint32_t>& dirty = draining_dirty_;
  constexpr size_t kAhead = 8;
  const size_t end = dirty.size() - snap_pos_ > budget ? snap_pos_ + budget : dirty.size();
  for (size_t k = snap_pos_; k < end; ++k) {
    if (k + kAhead < dirty.size()) {
      const UserSlot& next = users.slot(dirty[k + kAhead]);
      __builtin_prefetch(&next);
      __builtin_prefetch(reinterpret_cast<const char*>(&next) + 64);
    }
    if (k + kAhead / 2 < dirty.size()) {
      const UserSlot& soon = users.slot(dirty[k + kAhead / 2]);
      if (!soon.state.buckets.empty()) __builtin_prefetch(soon.state.buckets.data());
    }
    // Users changed since BeginSnapshot were written by Touch() already.
    if (users.slot(dirty[k]).epoch == snap_epoch_) SnapshotUser(users, dirty[k]);
  }
  snap_pos_ = end;
  if (snap_pos_ < dirty.size()) return false;
  snap_epoch_ = 0;
  snap_sink_ = nullptr;
  snap_index_sink_ = nullptr;
  return true;
}

bool ShardCheckpoint::Done(UserTable& users, bool ok) {
  const bool finished = snap_epoch_ == 0;
  if (!finished) {  // misuse: a snapshot not finished cannot have been written
    snap_epoch_ = 0;
    snap_sink_ = nullptr;
    snap_index_sink_ = nullptr;
    ok = false;
  }
  if (!ok) {
    // Changed again since the snapshot or not, each is still to be written,
    // and those it would have persisted first to be indexed again.
    for (uint32_t i : snap_indexed_) users.slot(i).indexed = false;
    for (uint32_t i : draining_dirty_) MarkDirty(users, i);
  }
  draining_dirty_.clear();
  snap_indexed_.clear();
  return finished;
}

// ---- ShardState: checkpoints ------------------------------------------------

void ShardState::CheckpointDone(bool ok, NewSeenIds taken) {
  // A snapshot still in progress fails the whole checkpoint.
  if (!checkpoint_.Done(users_, ok)) ok = false;
  dedup_.CheckpointDone(ok, std::move(taken));
}

void ShardState::EncodeMeta(uint64_t log_seq, std::string* out) const {
  ShardMetaHeader header;
  header.shard_id = shard_id_;
  header.log_seq = log_seq;
  header.max_ts = max_ts_;
  // The last day whose tier checks are all done: while a day is being swept
  // in slices, its remaining checks are rebuilt from it after a restart.
  const int32_t swept = timers_.swept_day();
  header.swept_day = timers_.DayInProgress() && swept != kNoDay ? swept - 1 : swept;
  header.forgotten_through_day = dedup_.forgotten_through_day();
  header.change_seq = change_seq_;
  header.input_position = input_position_;
  header.owner_generation = owner_generation_;
  header.checkpoint_number = checkpoint_number_;
  header.forward_marks = forward_marks_;
  EncodeShardMeta(header, agg_, out);
}

Status ShardState::DecodeMeta(std::string_view in, uint64_t* log_seq) {
  ShardMetaHeader header;
  header.shard_id = shard_id_;
  Status s = DecodeShardMeta(in, &header, &agg_);
  if (!s.ok()) return s;
  *log_seq = header.log_seq;
  max_ts_ = header.max_ts;
  change_seq_ = header.change_seq;
  input_position_ = header.input_position;
  owner_generation_ = header.owner_generation;
  checkpoint_number_ = header.checkpoint_number;
  forward_marks_ = std::move(header.forward_marks);
  timers_.set_swept_day(header.swept_day);
  if (header.forgotten_known) {
    dedup_.set_forgotten_through_day(header.forgotten_through_day);
  } else {
    // Unknown: ids past the event-time horizon may have been forgotten.
    dedup_.set_forgotten_through_day(
        max_ts_ == kNoTs ? kNoDay
                         : std::max(kFirstCellDay, DayOf(max_ts_, config_.utc_offset_ms) -
                                                       config_.dedup_horizon_days - 1));
  }
  return Status::Ok();
}

// ---- ShardState: recovery ---------------------------------------------------

Status ShardState::LoadUser(std::string_view user_id, std::string_view encoded, bool resident) {
  UserState s;
  Status st = DecodeUserState(encoded, &s);
  if (!st.ok()) return st;
  if (resident) {
    const uint32_t i = users_.Insert(user_id);
    UserSlot& slot = users_.slot(i);
    slot.state = std::move(s);
    slot.touched = false;
    slot.indexed = true;
    return Status::Ok();
  }
  users_.set_evicted_any();
  if (timers_.swept_day() != kNoDay) {
    const int32_t next = NextCheck(s, timers_.swept_day());
    if (next != kNoDay) timers_.AddEvicted(users_.HashOf(user_id), next);
  }
  return Status::Ok();
}

void ShardState::RebuildTimers() {
  if (timers_.swept_day() == kNoDay) return;
  for (uint32_t i = 0; i < users_.slot_count(); ++i) {
    if (users_.slot(i).id.empty()) continue;
    UserState& s = users_.slot(i).state;
    s.next_check_day = kNoDay;
    Schedule(i, NextCheck(s, timers_.swept_day()));
  }
}

uint64_t ShardState::RetierResident() {
  if (timers_.swept_day() == kNoDay) return 0;
  uint64_t changed = 0;
  cause_ = Cause{ChangeCause::kRules, rules_cause_, rules_at_ms_};
  for (uint32_t i = 0; i < users_.slot_count(); ++i) {
    if (users_.slot(i).id.empty()) continue;
    const Tier before = users_.slot(i).state.tier;
    Reconcile(i, timers_.swept_day());
    changed += users_.slot(i).state.tier != before;
  }
  return changed;
}

bool ShardState::RetierEvicted(std::string_view user_id, std::string_view encoded,
                               std::string* updated) {
  const int32_t day = timers_.swept_day();
  if (day == kNoDay || users_.Lookup(user_id) != UserTable::kAbsent) return false;
  UserState s;
  if (!DecodeUserState(encoded, &s).ok()) return false;
  const Tier tier =
      EvaluateTier(s, ComputeWindows(s, day), day, config_.utc_offset_ms, config_.rules);
  if (tier == s.tier) return false;
  agg_.MoveTier(s.tier, tier);
  const Tier from = s.tier;
  s.tier = tier;
  if (record_changes_) {
    cause_ = Cause{ChangeCause::kRules, rules_cause_, rules_at_ms_};
    RecordChange(user_id, &s, from);
  }
  updated->clear();
  EncodeUserState(s, updated);
  return true;
}

}  // namespace tierstream::state
