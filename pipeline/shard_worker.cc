// A shard worker's loop: it takes batches from its queue in groups, makes
// each group's accepted events durable in one journal write and applies
// them, and between groups answers queries and keeps house (tier sweeps,
// id expiry, checkpoint and spill steps). The hot path of the pipeline.
#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "pipeline/pipeline_impl.h"
#include "state/log_format.h"

namespace tierstream::pipeline {

using ingest::Event;
using ingest::EventType;

void Pipeline::Impl::Run(Worker* w) {
  std::vector<Task>& tasks = w->tasks;
  std::vector<Batch*>& group = w->group;
  group.reserve(kMaxGroupBatches);
  for (;;) {
    if (pause_requested.load(std::memory_order_acquire)) Park(w);
    // Events, queries and calls wake the worker at once; the wait is only
    // how soon housekeeping runs when nothing is sent (Housekeep sets it).
    size_t n = w->queue.wait_dequeue_bulk_timed(tasks.data(), tasks.size(), w->idle_wait);
    AnswerQueries(w);
    group.clear();
    size_t group_events = 0;
    bool stop = false;
    for (size_t i = 0; i < n; ++i) {
      if (ShardCall* call = std::exchange(tasks[i].call, nullptr)) {
        // After the batches before it.
        if (!group.empty()) ProcessGroup(w, group.data(), group.size());
        group.clear();
        group_events = 0;
        Status result;
        try {
          result = call->fn();
        } catch (...) {
          call->done.set_value(Status::Internal("shard " + std::to_string(w->id) + " failed"));
          throw;
        }
        call->done.set_value(std::move(result));
        continue;
      }
      Batch* b = std::exchange(tasks[i].batch, nullptr);
      if (b == nullptr) {
        stop = stopping.load();
        continue;
      }
      group.push_back(b);
      group_events += b->per_shard[w->id].size();
      if (group_events >= kMaxGroupEvents) {
        ProcessGroup(w, group.data(), group.size());
        group.clear();
        group_events = 0;
        AnswerQueries(w);
      }
    }
    if (!group.empty()) ProcessGroup(w, group.data(), group.size());
    AnswerQueries(w);
    if (stop && w->queue.size_approx() == 0) {
      Housekeep(w, true /*force_checkpoint*/);
      AnswerQueries(w);
      return;
    }
    Housekeep(w, false);
  }
}

void Pipeline::Impl::ProcessGroup(Worker* w, Batch** batches, size_t n) {
  using internal::BatchAccess;
  if (options.test_fault_hook) options.test_fault_hook("worker.group", w->id);
  state::ShardState& st = w->state;
  // The Kafka mode: a batch that would leave a gap in the shard's input (one
  // before it failed) is refused; the others move the position on.
  state::InputPosition position = st.input_position();
  bool moved = false;
  size_t kept = 0;
  w->group_marks.clear();
  for (size_t i = 0; i < n; ++i) {
    Batch* b = batches[i];
    if (b->input && b->input->shard == w->id) {
      const InputSpan& span = *b->input;
      if (span.start.events > position.events || span.start.repartition > position.repartition) {
        BatchAccess::failed(b).store(true);
        CompletePart(b);
        continue;
      }
      const state::InputPosition before = position;
      position.Merge(span.end);
      moved |= position != before || !span.forwards.empty();
      for (const state::ForwardMark& m : span.forwards) {
        auto it = std::find_if(w->group_marks.begin(), w->group_marks.end(),
                               [&](const state::ForwardMark& g) { return g.source == m.source; });
        if (it == w->group_marks.end()) {
          w->group_marks.push_back(m);
        } else {
          it->next = std::max(it->next, m.next);
        }
      }
    }
    batches[kept++] = b;
  }
  n = kept;
  w->accepted.clear();
  int64_t group_max_ts = kNoTs;
  size_t accepted_count = 0;
  st.SetWallClock(WallNow());
  // 1. Drop duplicates; encode the rest for the log. The arrival day counts
  // this group's own events too (the very first group has no T yet).
  int64_t arrival_ts = watermark.load(std::memory_order_acquire);
  w->events.clear();
  w->hashes.clear();
  w->user_hashes.clear();
  for (size_t i = 0; i < n; ++i) {
    for (const Event& e : batches[i]->per_shard[w->id]) {
      arrival_ts = std::max(arrival_ts, e.ts_ms);
      w->events.push_back(&e);
      w->hashes.push_back(
          HashId128(e.event_id, e.type == EventType::kReferralCredit ? kCreditSeed : kEventSeed));
      w->user_hashes.push_back(state::ShardState::UserHash(e.user_id));
    }
  }
  const int32_t arrival_day =
      arrival_ts == kNoTs ? kNoDay : DayOf(arrival_ts, options.config.utc_offset_ms);
  const size_t count = w->events.size();
  w->processed_since_housekeep += count;
  if (options.write_log && count >= kOwnChangesWriteFrom && w->state.pending_changes() > 0) {
    if (Status c = FlushChanges(w); !c.ok()) {  // else they go with the block, as below
      LogAt(LogLevel::kError, "shard %u: writing tier changes failed (will retry): %s", w->id,
            c.ToString().c_str());
    }
  }
  // What the group counts besides its events is logged with them.
  state::LogBlockCounts counts;
  for (size_t i = 0; i < n; ++i) {
    if (BatchAccess::reject_shard(batches[i]) == w->id) counts.rejected += batches[i]->rejected;
  }
  const size_t new_seen_mark = st.NewSeenMark();
  constexpr size_t kSeenAhead = 8;
  for (size_t j = 0; j < count; ++j) {
    if (j + kSeenAhead < count) st.PrefetchSeen(w->hashes[j + kSeenAhead]);
    // Nothing is applied in this pass, so queries may be answered in it too.
    if ((j & 1023) == 1023 && w->queries.size_approx() > 0) AnswerQueries(w, true);
    const Event& e = *w->events[j];
    const bool fresh = st.MarkSeenHash(w->hashes[j], e.ts_ms, arrival_day);
    w->accepted.push_back(fresh ? 1 : 0);
    const bool credit = e.type == EventType::kReferralCredit;
    if (!fresh) {
      counts.duplicates += credit ? 0 : 1;
      continue;
    }
    if (!credit && st.BeyondHorizon(e.ts_ms)) ++counts.beyond_horizon;
    ++accepted_count;
    group_max_ts = std::max(group_max_ts, e.ts_ms);
  }
  // 2. Make them durable before anything is applied or acknowledged. If
  // the duplicate check or the log write failed, nothing of the group counts.
  // The block records T as the group is applied (replay applies it as of
  // the same T), and follows the time changes made before it.
  const int64_t t_apply = std::max(watermark.load(std::memory_order_acquire), group_max_ts);
  bool ok = true;
  Status s = st.TakeIdError();
  if (!s.ok()) {
    LogAt(LogLevel::kError, "shard %u: duplicate index read failed, batch refused: %s", w->id,
          s.ToString().c_str());
  } else if (s = PrepareUsers(w); !s.ok()) {
    LogAt(LogLevel::kError, "shard %u: an evicted user could not be read back, batch refused: %s",
          w->id, s.ToString().c_str());
  } else if (options.write_log &&
             (accepted_count > 0 || counts.duplicates > 0 || counts.rejected > 0 || moved)) {
    w->block.clear();
    state::BeginLogBlock(&w->block, t_apply,
                         options.placement == Placement::kKafka ? &position : nullptr,
                         w->group_marks);
    for (size_t j = 0; j < count; ++j) {
      if (w->accepted[j]) state::AppendEventRecord(*w->events[j], &w->block);
    }
    state::SetLogBlockCounts(counts, &w->block);
    // In one write with the tier changes made before the group (the last
    // group's, the sweep's): their time changes precede it in the log.
    s = FlushChanges(w, w->block);
    if (s.ok()) {
      w->logged_since_checkpoint += accepted_count;
    } else {
      LogAt(LogLevel::kError, "shard %u: log write failed, batch refused: %s", w->id,
            s.ToString().c_str());
    }
  }
  if (!s.ok()) {
    // The store now says it is failing: new batches are refused at once
    // until the committer has recovered it (TendStore).
    ok = false;
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
      for (const Event& e : batches[i]->per_shard[w->id]) {
        const bool credit = e.type == EventType::kReferralCredit;
        if (w->accepted[k++]) st.UnmarkSeen(e.event_id, credit ? kCreditSeed : kEventSeed);
      }
      BatchAccess::failed(batches[i]).store(true);
    }
    st.TruncateNewSeen(new_seen_mark);
  }
  // 3. Apply.
  if (ok && moved) {
    st.AdvanceInput(position);
    for (const state::ForwardMark& m : w->group_marks) st.AdvanceForward(m);
    PublishInputPosition(w);
  }
  if (ok) {
    st.CountIngest(0, counts.rejected, counts.beyond_horizon);  // duplicates: below, per batch
    if (counts.beyond_horizon > 0) WarnBeyondHorizon(w, counts.beyond_horizon);
    if (group_max_ts != kNoTs) AtomicMax(&watermark, group_max_ts);
    const int32_t today = t_apply == kNoTs ? kNoDay : DayOf(t_apply, options.config.utc_offset_ms);
    // Users' states are fetched ahead in three stages (see ShardState).
    auto prefetch = [&](size_t j, int stage) {
      if (j >= count || !w->accepted[j]) return;
      const uint64_t user = w->user_hashes[j];
      if (stage == 0) {
        st.PrefetchUser(user);
      } else {
        st.PrefetchUserState(user, stage == 2);
      }
    };
    for (size_t j = 0; j < 12 && j < count; ++j) {
      prefetch(j, 0);
      if (j < 8) prefetch(j, 1);
      if (j < 4) prefetch(j, 2);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
      uint64_t acc = 0, dup = 0;
      for (const Event& e : batches[i]->per_shard[w->id]) {
        const bool credit = e.type == EventType::kReferralCredit;
        prefetch(k + 12, 0);
        prefetch(k + 8, 1);
        prefetch(k + 4, 2);
        // Queries do not wait for a whole group (up to 64k events).
        if ((k & 1023) == 1023 && w->queries.size_approx() > 0) {
          AnswerQueries(w, true, false, true /*applying*/);
        }
        if (w->accepted[k++]) {
          st.Apply(e, today, t_apply);
          acc += credit ? 0 : 1;
        } else if (!credit) {
          st.CountDuplicate();
          ++dup;
        }
      }
      BatchAccess::accepted(batches[i]).fetch_add(acc, std::memory_order_relaxed);
      BatchAccess::duplicates(batches[i]).fetch_add(dup, std::memory_order_relaxed);
    }
  }
  for (size_t i = 0; i < n; ++i) CompletePart(std::exchange(batches[i], nullptr));
  // The changes the group made are served once durable: written now if the
  // worker has nothing more to do, else with the next group's log block.
  // They need not be before the acks: the group's events are durable, and
  // replay would make them again. A failed write keeps them for the next.
  if (ok && ChangesDue(w)) {
    if (Status c = FlushChanges(w); !c.ok()) {
      LogAt(LogLevel::kError, "shard %u: writing tier changes failed (will retry): %s", w->id,
            c.ToString().c_str());
    }
  }
}

Status Pipeline::Impl::PrepareUsers(Worker* w) {
  // Evicted users are read back before the group is logged: once it is
  // durable, an event whose user cannot be read could be neither applied
  // nor refused.
  const size_t count = w->events.size();
  constexpr size_t kAhead = 8;
  for (size_t j = 0; j < count; ++j) {
    if (j + kAhead < count) w->state.PrefetchUser(w->user_hashes[j + kAhead]);
    if (!w->accepted[j]) continue;
    Status s = w->state.PrepareUser(w->events[j]->user_id);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

void Pipeline::Impl::Housekeep(Worker* w, bool force_checkpoint) {
  // Until shown otherwise (at the end), there is more to do soon.
  w->idle_wait = std::chrono::milliseconds(5);
  const int32_t today = Today();
  bool swept = true;
  if (today != kNoDay) {
    // A final checkpoint finishes the sweep: the next start begins as of T.
    swept = w->state.Sweep(today, force_checkpoint ? SIZE_MAX : options.sweep_slice);
  }
  // Time changes (and those of queries' sweeps) are written now when due
  // (else with the next group's log block); a checkpoint covers only
  // changes the feed holds, so one starts only after they are written.
  Status flushed = force_checkpoint || ChangesDue(w) ? FlushChanges(w) : Status::Ok();
  if (!flushed.ok()) {
    LogAt(LogLevel::kError, "shard %u: writing tier changes failed (will retry): %s", w->id,
          flushed.ToString().c_str());
  }
  // Event ids expire by this shard's own newest event, not the global T:
  // other shards may run ahead, and a re-sent event must not lose its id
  // just because unrelated later traffic was processed first.
  const int32_t own_day = OwnDay(w);
  // Expiry and snapshots advance in slices that grow with the events
  // processed since the last call, so that they keep up with any ingest rate
  // while no step is ever long compared with the group before it.
  const size_t processed = std::exchange(w->processed_since_housekeep, 0);
  w->state.SetWallClock(WallNow());
  bool expired = true;
  if (own_day != kNoDay) {
    expired = w->state.ExpireSeen(
        own_day, force_checkpoint ? SIZE_MAX : std::max(options.expire_slice, 2 * processed));
  }
  ContinueSnapshot(w, std::max(options.snapshot_slice, processed));
  // A snapshot being taken goes straight on.
  if (w->cp_phase.load(std::memory_order_acquire) == CheckpointPhase::kSnapshotting) {
    w->idle_wait = std::chrono::milliseconds(0);
  }
  // Event ids over their memory budget spill into a run beside checkpoints
  // (the next checkpoint makes it durable); a final checkpoint waits for a
  // spill in flight, so that it confirms its run.
  FinishSpill(w, force_checkpoint);
  Status s;
  if (FinishCheckpoint(w, force_checkpoint, &s) && !s.ok()) {
    LogAt(LogLevel::kError, "shard %u: checkpoint failed (will retry): %s", w->id,
          s.ToString().c_str());
  }
  // A spill starts between checkpoints (the blobs of one in flight would
  // race the freeze), before the next one may start.
  // A failed store refuses writes until it is recovered: checkpoints and
  // spills wait (a final checkpoint still tries, and reports); after a part
  // of the pipeline failed they wait for the restart, which replays the log
  // (a failed committer would only fail them).
  const bool hold_writes = store->failing() || failed.load(std::memory_order_acquire) ||
                           !w->owned.load(std::memory_order_acquire);
  if (!force_checkpoint && !hold_writes && w->state.WantsSpill() &&
      w->spill_phase.load(std::memory_order_acquire) == SpillPhase::kIdle &&
      w->cp_phase.load(std::memory_order_acquire) == CheckpointPhase::kIdle) {
    StartSpill(w);
  }
  // Users changed since the snapshot cannot be evicted: far over the bound,
  // the worker checkpoints and evicts before it takes more events.
  if (!hold_writes && w->state.resident_users() > ResidentLimit() + ResidentLimit() / 2) {
    s = Checkpoint(w);
    if (!s.ok())
      LogAt(LogLevel::kError, "shard %u: checkpoint failed (will retry): %s", w->id,
            s.ToString().c_str());
  }
  if (w->cp_phase.load(std::memory_order_acquire) != CheckpointPhase::kIdle) return;
  if (!w->owned.load(std::memory_order_acquire)) {
    // The Kafka mode: a shard whose partition another instance owns has no
    // time-driven work; it wakes for what it is sent (queries, a claim).
    w->idle_wait = std::chrono::milliseconds(200);
    return;
  }
  const Clock::time_point now = Clock::now();
  const Clock::time_point checkpoint_due =
      w->last_checkpoint + std::chrono::milliseconds(options.checkpoint_interval_ms);
  const bool due_by_time = now >= checkpoint_due;
  const bool has_work = w->state.dirty_count() > 0 || w->log_seq != w->checkpoint_seq;
  const bool over_memory = w->state.resident_users() > ResidentLimit() + ResidentLimit() / 8;
  // The log after the last checkpoint is what a restart replays: it is kept
  // short.
  if (force_checkpoint) {
    s = Checkpoint(w);
    if (!s.ok()) {
      LogAt(LogLevel::kError, "shard %u: final checkpoint failed: %s", w->id, s.ToString().c_str());
      MutexLock lock(&error_mu);
      if (first_worker_error.ok()) first_worker_error = s;
    }
  } else if (hold_writes || !flushed.ok() ||
             w->spill_phase.load(std::memory_order_acquire) != SpillPhase::kIdle) {
    // A checkpoint waits for the store to recover (it would fail), and for
    // the spill in flight: the ids frozen for it are
    // in no seen blob and no committed run, so a checkpoint (and the log trim
    // after it) now would leave them nowhere after a crash.
  } else if (over_memory || w->state.dirty_count() >= options.checkpoint_dirty_users ||
             w->logged_since_checkpoint >= options.checkpoint_log_events ||
             (options.write_log && due_by_time && has_work)) {
    if (flushed = FlushChanges(w); flushed.ok()) {
      StartCheckpoint(w);
    } else {
      LogAt(LogLevel::kError, "shard %u: writing tier changes failed (will retry): %s", w->id,
            flushed.ToString().c_str());
    }
  }
  // Nothing under way: only time can give the worker work now — a
  // checkpoint falling due, a new day of T (other shards' events) or of the
  // wall clock — and that may wait a little; whatever is sent wakes it.
  if (!force_checkpoint && swept && expired && flushed.ok() && !hold_writes &&
      (!feed || w->state.pending_changes() == 0) &&
      w->cp_phase.load(std::memory_order_acquire) == CheckpointPhase::kIdle &&
      w->spill_phase.load(std::memory_order_acquire) == SpillPhase::kIdle) {
    auto wait = kSettledWait;
    if (options.write_log && has_work) {
      wait = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(checkpoint_due - now),
                        std::chrono::milliseconds(1), kSettledWait);
    }
    w->idle_wait = wait;
  }
}

void Pipeline::Impl::WarnBeyondHorizon(Worker* w, uint64_t n) {
  const int64_t now = WallNow();
  int64_t last = beyond_horizon_logged_ms.load(std::memory_order_relaxed);
  if (now - last < 60'000 ||
      !beyond_horizon_logged_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return;
  }
  LogAt(LogLevel::kInfo,
        "shard %u: accepted %llu events older than the duplicate horizon (%d days of event time "
        "and of wall clock); had they been sent before, they are counted again. Total: %lld "
        "(events_beyond_horizon in /healthz)",
        w->id, static_cast<unsigned long long>(n), options.config.dedup_horizon_days,
        static_cast<long long>(w->state.events_beyond_horizon()));
}

}  // namespace tierstream::pipeline
