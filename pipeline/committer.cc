// Checkpoints and id spills. The worker snapshots what changed, as of one
// moment, in slices between groups; the committer thread groups the new ids
// by day, commits the snapshot in one WriteBatch and trims the journal it
// covers (or writes a spilled id run's blocks); the worker then takes the
// outcome. Between its jobs the committer tends a failed store
// (failed_store.cc). A failed committer fails its jobs (failed_part.cc).
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/data_dir.h"
#include "pipeline/pipeline_impl.h"

namespace tierstream::pipeline {

void Pipeline::Impl::StartCheckpoint(Worker* w) {
  // About 100 bytes per user (key and encoding, twice: staged, then in the
  // batch) and 20 per new or spilled event id.
  const size_t expected = w->state.dirty_count() * 2 * 100 + w->state.NewSeenMark() * 20;
  w->cp = std::make_unique<state::Store::Checkpoint>(store.get(), expected, w->state.dirty_count());
  state::Store::Checkpoint* cp_ptr = w->cp.get();
  state::Store::Checkpoint& cp = *cp_ptr;
  const uint32_t shard = w->id;
  w->state.BeginSnapshot(
      [cp_ptr, shard](std::string_view id, std::string_view bytes) {
        cp_ptr->StageUser(shard, id, bytes);
      },
      [cp_ptr, shard](uint64_t hash, std::string_view id) {
        cp_ptr->PutUserIndex(shard, hash, id);
      });
  w->cp_new_seen = w->state.TakeNewSeen();
  w->cp_changes = std::exchange(w->unexported_changes, {});
  // Runs spilled since the last checkpoint become durable with this one;
  // the seen blobs they cover go (before any expired run is deleted: a run
  // may have expired already).
  w->state.DrainUnconfirmedRuns([&](const state::ShardState::UnconfirmedRun& run) {
    cp.PutIdRun(w->id, run.run_no, run.descriptor);
    for (int32_t day = run.first_day; day <= run.last_day; ++day) {
      cp.DeleteSeenUpTo(w->id, day, run.covers_sub);
    }
  });
  w->state.DrainExpiredRuns([&](uint64_t run_no) { cp.DeleteIdRun(w->id, run_no); });
  w->cp_mark =
      ShardMark{w->state.owner_generation(), w->state.NextCheckpoint(), w->state.input_position()};
  std::string meta;
  w->state.EncodeMeta(w->log_seq, &meta);
  cp.PutMeta(ShardMetaKey(w->id), meta);
  cp.PutMeta(UserIndexStampKey(w->id), UserIndexStamp(meta));
  // Persisted ids of days that expired in memory (past both horizons) go too.
  if (w->state.oldest_kept_day() != INT32_MIN)
    cp.DeleteSeenBefore(w->id, w->state.oldest_kept_day());
  w->cp_log_seq = w->log_seq;
  w->cp_logged = w->logged_since_checkpoint;
  w->cp_phase.store(CheckpointPhase::kSnapshotting, std::memory_order_release);
  w->last_checkpoint = w->cp_started = Clock::now();
  ContinueSnapshot(w, options.snapshot_slice);
}

void Pipeline::Impl::ContinueSnapshot(Worker* w, size_t budget) {
  if (w->cp_phase.load(std::memory_order_acquire) != CheckpointPhase::kSnapshotting) return;
  if (!w->state.SnapshotStep(budget)) return;
  w->cp_phase.store(CheckpointPhase::kCommitting, std::memory_order_release);
  commits.enqueue(CommitJob{w, false});
}

bool Pipeline::Impl::FinishCheckpoint(Worker* w, bool wait, Status* status) {
  CheckpointPhase phase = w->cp_phase.load(std::memory_order_acquire);
  if (phase == CheckpointPhase::kIdle) return false;
  if (phase == CheckpointPhase::kSnapshotting) {
    if (!wait) return false;
    ContinueSnapshot(w, SIZE_MAX);
    phase = CheckpointPhase::kCommitting;
  }
  if (phase == CheckpointPhase::kCommitting) {
    if (!wait) return false;
    w->cp_phase.wait(CheckpointPhase::kCommitting, std::memory_order_acquire);
  }
  Status s = w->cp_status;
  w->cp.reset();
  w->cp_phase.store(CheckpointPhase::kIdle, std::memory_order_relaxed);
  w->state.CheckpointDone(s.ok(), std::move(w->cp_new_seen));
  if (!s.ok()) {
    // The next checkpoint covers them.
    w->unexported_changes.insert(w->unexported_changes.begin(),
                                 std::make_move_iterator(w->cp_changes.begin()),
                                 std::make_move_iterator(w->cp_changes.end()));
  }
  w->cp_changes.clear();
  if (s.ok()) {
    w->committed = w->cp_mark;
    w->checkpoint_seq = w->cp_log_seq;
    w->logged_since_checkpoint -= w->cp_logged;
    // Only now are the evicted users' states safely on disk.
    const size_t limit = ResidentLimit();
    if (w->state.resident_users() > limit) w->state.EvictClean(limit - limit / 10);
  }
  *status = s;
  return true;
}

Status Pipeline::Impl::Checkpoint(Worker* w) {
  FinishSpill(w, true /*wait*/);  // no checkpoint while a spill is written (see Housekeep)
  // A checkpoint covers only changes the feed holds (its meta counts them).
  Status s = FlushChanges(w);
  if (!s.ok()) return s;
  if (FinishCheckpoint(w, true, &s) && !s.ok()) {
    LogAt(LogLevel::kError, "shard %u: checkpoint failed (will retry): %s", w->id,
          s.ToString().c_str());
  }
  StartCheckpoint(w);
  FinishCheckpoint(w, true, &s);
  return s;
}

void Pipeline::Impl::StartSpill(Worker* w) {
  w->spill = &w->state.FreezeIdsForSpill(w->seen_sub.load(std::memory_order_acquire),
                                         &w->spill_run_no, &w->spill_wall_ms);
  w->spill_phase.store(SpillPhase::kWriting, std::memory_order_release);
  commits.enqueue(CommitJob{w, true /*spill*/});
}

bool Pipeline::Impl::FinishSpill(Worker* w, bool wait) {
  SpillPhase phase = w->spill_phase.load(std::memory_order_acquire);
  if (phase == SpillPhase::kIdle) return false;
  if (phase == SpillPhase::kWriting) {
    if (!wait) return false;
    w->spill_phase.wait(SpillPhase::kWriting, std::memory_order_acquire);
  }
  if (!w->spill_status.ok()) {
    LogAt(LogLevel::kError, "shard %u: spilling event ids failed (kept in memory): %s", w->id,
          w->spill_status.ToString().c_str());
  }
  w->state.SpillDone(w->spill_status.ok(), &w->spill_run, std::move(w->spill_descriptor));
  w->spill = nullptr;
  w->spill_run = state::IdRun();
  w->spill_descriptor.clear();
  w->spill_phase.store(SpillPhase::kIdle, std::memory_order_relaxed);
  return true;
}

void Pipeline::Impl::WriteSpill(Worker* w) {
  // The frozen map is only read here and by the worker's lookups.
  std::vector<std::pair<Hash128, int32_t>> entries;
  entries.reserve(w->spill->size());
  w->spill->ForEach([&](const Hash128& h, int32_t day) { entries.emplace_back(h, day); });
  state::Store::Checkpoint blocks(store.get(), entries.size() * (state::kIdRunEntryBytes + 8));
  w->spill_run =
      state::IdRun::Build(w->spill_run_no, &entries, [&](uint32_t block, std::string_view bytes) {
        blocks.PutIdBlock(w->id, w->spill_run_no, block, bytes);
      });
  w->spill_run.set_max_wall_ms(w->spill_wall_ms);
  w->spill_descriptor.clear();
  w->spill_run.EncodeDescriptor(&w->spill_descriptor);
  // The blocks alone: until a checkpoint writes the descriptor they are
  // unreferenced (and deleted by recovery if none does).
  w->spill_status = store->Commit(&blocks, options.fsync);
  if (w->spill_status.ok()) Export(w, blocks, false);
  in_hand = CommitJob{};  // its outcome is given
  w->spill_phase.store(SpillPhase::kWritten, std::memory_order_release);
  w->spill_phase.notify_all();
  w->queue.enqueue(Task{nullptr});  // wakes the worker to take it
}

void Pipeline::Impl::RunCommitter() {
  for (;;) {
    CommitJob job;
    // A failed store is tended between jobs, so the wait is short then.
    const bool got = commits.wait_dequeue_timed(
        job, std::chrono::milliseconds(store->failing() || recovery_state.failing ? 5 : 50));
    if (got && job.w == nullptr) {
      pause_requested.store(false, std::memory_order_release);
      return;
    }
    if (!got) {
      TendStore();
      TendChangeRetention();
      SampleStoreFigures();
      continue;
    }
    Worker* w = job.w;
    in_hand = job;  // should the committer fail, its failed_part.cc gives the outcome
    if (options.test_fault_hook) {
      options.test_fault_hook(job.spill ? "committer.spill" : "committer.checkpoint", w->id);
    }
    if (job.spill) {
      WriteSpill(w);
      TendStore();
      SampleStoreFigures();
      continue;
    }
    // New ids go into one blob per day (read only here until the worker
    // finishes the checkpoint).
    for (const state::SeenDayBlob& b : w->cp_new_seen.EncodeByDay()) {
      w->cp->PutSeen(w->id, b.day, w->seen_sub.fetch_add(1, std::memory_order_acq_rel) + 1, b.blob);
    }
    const size_t bytes = w->cp->ApproximateBytes();
    w->cp_status = store->Commit(w->cp.get(), options.fsync);
    if (w->cp_status.ok()) {
      Export(w, *w->cp, true);
      checkpoint_seconds.Observe(Clock::now() - w->cp_started);
      last_checkpoint_bytes.store(bytes, std::memory_order_relaxed);
    } else {
      checkpoint_failures.fetch_add(1, std::memory_order_relaxed);
    }
    if (w->cp_status.ok() && w->cp_log_seq > 0) {
      Status trimmed = store->TrimLog(w->id, w->cp_log_seq);
      if (!trimmed.ok())
        LogAt(LogLevel::kError, "shard %u: log trim failed: %s", w->id, trimmed.ToString().c_str());
    }
    in_hand = CommitJob{};
    w->cp_phase.store(CheckpointPhase::kCommitted, std::memory_order_release);
    w->cp_phase.notify_all();
    w->queue.enqueue(Task{nullptr});  // wakes the worker to finish it
    TendStore();
    SampleStoreFigures();
  }
}

void Pipeline::Impl::Export(Worker* w, const state::Store::Checkpoint& written, bool complete) {
  if (!options.on_checkpoint) return;
  CheckpointImage image;
  image.shard = w->id;
  image.complete = complete;
  image.mark = w->cp_mark;
  // Committed (the worker takes cp_changes back only after the commit).
  if (complete) image.changes = std::move(w->cp_changes);
  Status s = state::Store::ExportImage(written, kImageChunkBytes, &image.chunks);
  if (!s.ok()) {
    // Only a write batch of unexpected ops fails here: a bug, not a fault.
    throw std::logic_error("shard " + std::to_string(w->id) + ": " + s.ToString());
  }
  options.on_checkpoint(std::move(image));
}

void Pipeline::Impl::SampleStoreFigures() {
  const auto now = Clock::now();
  if (now < next_store_sample) return;
  next_store_sample = now + std::chrono::seconds(1);
  state::StoreFigures figures = store->Figures();
  const uint64_t feed_bytes = feed ? store->ChangesBytes() : 0;
  MutexLock lock(&figures_mu);
  store_figures = figures;
  changes_bytes = feed_bytes;
}

void Pipeline::Impl::StopCommitter() {
  if (!committer.joinable()) return;
  commits.enqueue(CommitJob{});
  committer.join();
}

}  // namespace tierstream::pipeline
