// Open's recovery: loads each shard's checkpoint (meta, users, seen ids,
// id runs), replays the journal after it through the same apply path, and,
// when the tier rules changed, re-evaluates every user under the new ones.
#include <chrono>
#include <memory>
#include <string>
#include <vector>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "pipeline/data_dir.h"
#include "pipeline/journal_source.h"
#include "pipeline/pipeline_impl.h"
#include "state/log_format.h"

namespace tierstream::pipeline {

using ingest::Event;
using ingest::EventType;

void Pipeline::Impl::ApplyLogged(Worker* w, const Event& e, int64_t t_ms) {
  // Every logged event was accepted when it was logged, after the
  // checkpoint: it is applied whatever the loaded ids say (an id that had
  // expired in memory may still sit in a seen blob the next checkpoint would
  // have deleted). MarkSeen only records it again.
  const bool credit = e.type == EventType::kReferralCredit;
  (void)w->state.MarkSeen(e.event_id, credit ? kCreditSeed : kEventSeed, e.ts_ms, Today());
  AtomicMax(&watermark, e.ts_ms);
  // As of the T it was applied at live (blocks before version 3: the final T).
  w->state.Apply(e, t_ms == kNoTs ? Today() : DayOf(t_ms, options.config.utc_offset_ms), t_ms);
  ++recovery.log_events_replayed;
}

// A shard's checkpoint: its meta (aggregates, the log position it covers),
// its users (as many as fit stay resident; the others only register their
// pending tier checks, by hash, and are reloaded when needed), its seen ids
// and id runs. The user index is rebuilt when its stamp does not match.
Status Pipeline::Impl::LoadShard(Worker* w) {
  w->state.SetWallClock(WallNow());
  bool build_index = false;
  {
    std::string meta;
    bool found = false;
    Status s = store->GetMeta(ShardMetaKey(w->id), &meta, &found);
    if (!s.ok()) return s;
    if (found) {
      std::string stamp;
      bool stamped = false;
      s = store->GetMeta(UserIndexStampKey(w->id), &stamp, &stamped);
      if (!s.ok()) return s;
      build_index = !stamped || stamp != UserIndexStamp(meta);
      uint64_t seq;
      s = w->state.DecodeMeta(meta, &seq);
      if (!s.ok()) return s;
      w->log_seq = w->checkpoint_seq = seq;
      w->committed = ShardMark{w->state.owner_generation(), w->state.checkpoint_number(),
                               w->state.input_position()};
      if (w->state.max_ts() != kNoTs) AtomicMax(&watermark, w->state.max_ts());
      w->seen_sub =
          static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    }
  }
  const size_t limit = ResidentLimit();
  Status st;
  size_t loaded = 0;
  uint64_t indexed = 0;
  std::unique_ptr<state::Store::Checkpoint> index;
  auto flush_index = [&] {
    Status c = index ? store->Commit(index.get(), false /*sync: the stamp's is*/) : Status::Ok();
    index.reset();
    return c;
  };
  Status s = store->ScanUsers(w->id, "", [&](std::string_view id, std::string_view bytes) {
    st = w->state.LoadUser(id, bytes, loaded < limit);
    ++loaded;
    ++recovery.users_loaded;
    if (st.ok() && build_index) {
      if (!index) index = std::make_unique<state::Store::Checkpoint>(store.get(), 1u << 20);
      index->PutUserIndex(w->id, w->state.HashOf(id), id);
      ++indexed;
      if (index->ApproximateBytes() >= (16u << 20)) st = flush_index();
    }
    return st.ok();
  });
  if (!s.ok()) return s;
  if (!st.ok()) return st;
  if (build_index) {
    s = flush_index();
    if (!s.ok()) return s;
    std::string meta;
    bool found = false;
    s = store->GetMeta(ShardMetaKey(w->id), &meta, &found);
    if (s.ok()) s = store->PutMeta(UserIndexStampKey(w->id), UserIndexStamp(meta), true /*sync*/);
    if (!s.ok()) return s;
    LogAt(LogLevel::kInfo,
          "shard %u: indexed %llu users by hash (a data dir from before the user index)", w->id,
          static_cast<unsigned long long>(indexed));
  }
  s = store->ScanSeen(
      w->id, [&](int32_t day, std::string_view packed) { return w->state.LoadSeen(day, packed); });
  if (!s.ok()) return s;
  s = store->ScanIdRuns(w->id, [&](std::string_view d) { return w->state.LoadIdRun(d); });
  if (!s.ok()) return s;
  // Blocks of a spill whose descriptor never committed (a crash came first).
  s = store->DeleteIdBlocksFrom(w->id, w->state.next_run_no());
  if (!s.ok()) return s;
  w->state.RebuildTimers();
  return Status::Ok();
}

Status Pipeline::Impl::Recover() {
  const auto start = Clock::now();
  for (auto& w : workers) w->state.SetWallClock(WallNow());
  for (auto& w : workers) {
    Status s = LoadShard(w.get());
    if (!s.ok()) return s;
  }
  // The log after each checkpoint: acknowledged events not yet in state.
  // A first pass finds T, so that replayed events get (at least) the arrival
  // day they had in the duplicate index.
  JournalSource journal(store.get(), static_cast<uint32_t>(workers.size()));
  for (auto& w : workers) {
    Status s = journal.ReadFrom(w->id, w->checkpoint_seq, [&](uint64_t, std::string_view block) {
      state::LogBlockReader reader(block);
      Event e;
      while (reader.Next(&e)) AtomicMax(&watermark, e.ts_ms);
      return Status::Ok();
    });
    if (!s.ok()) return s;
  }
  for (auto& w : workers) {
    Status s =
        journal.ReadFrom(w->id, w->checkpoint_seq, [&](uint64_t seq, std::string_view block) {
          state::LogBlockReader reader(block);
          if (reader.has_position()) {
            w->state.AdvanceInput(reader.position());
            for (const state::ForwardMark& m : reader.marks()) w->state.AdvanceForward(m);
          }
          const state::LogBlockCounts& c = reader.counts();
          w->state.CountIngest(c.duplicates, c.rejected, c.beyond_horizon);
          state::LogRecord r;
          while (reader.Next(&r)) {
            if (r.kind == state::LogRecord::Kind::kEvent) {
              ApplyLogged(w.get(), r.event, reader.t_ms());
            } else if (Status t = w->state.ReplayTimeChange(r.user_id, r.day); !t.ok()) {
              return t;
            }
          }
          Status id_status = w->state.TakeIdError();
          if (!id_status.ok()) return id_status;
          Status user_status = w->state.TakeUserError();
          if (!user_status.ok()) return user_status;
          if (!reader.ok()) {
            return Status::Corruption("log block " + std::to_string(seq) + " of shard " +
                                      std::to_string(w->id) + " does not decode");
          }
          w->log_seq = seq;
          return Status::Ok();
        });
    if (!s.ok()) return s;
    s = RepublishReplayed(w.get());
    if (!s.ok()) return s;
    PublishInputPosition(w.get());
  }
  const int32_t today = Today();
  for (auto& w : workers) {
    if (today != kNoDay) w->state.Sweep(today, SIZE_MAX);
    // The Kafka mode leaves the replayed log to the shard's next checkpoint:
    // its last one stays the changelog's newest, which a takeover of its
    // partition then keeps instead of restoring (kafka/changelog.h).
    if (options.placement == Placement::kKafka && !rules_changed) {
      Status s = FlushChanges(w.get());
      if (!s.ok()) return s;
    } else if (recovery.log_events_replayed > 0 || w->log_seq != w->checkpoint_seq ||
               w->state.has_changes() || rules_changed) {
      Status s = Checkpoint(w.get());  // flushes the sweep's changes first
      if (!s.ok()) return s;
    }
  }
  // New rules re-tier users from that checkpoint: a crash meanwhile starts
  // over from it and makes the same changes (the feed skips those it holds).
  if (rules_changed) {
    Status s = Retier();
    if (!s.ok()) return s;
  }
#if defined(__GLIBC__)
  // Recovery's transient memory (RocksDB's replay of its WAL into memtables,
  // the scans' buffers) is freed by now, but glibc keeps freed heap pages
  // resident: give them back, so that what stays resident is the state.
  ::malloc_trim(0);
#endif
  recovery.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return Status::Ok();
}

// The tier rules changed since the data was written: every user's tier (and
// the tier histogram) is re-evaluated under the new rules, resident users in
// memory, the others straight in the store.
Status Pipeline::Impl::Retier() {
  uint64_t changed = 0;
  for (auto& w : workers) {
    w->state.SetRulesCause(rules_text, watermark.load());
    changed += w->state.RetierResident();
    state::Store::Checkpoint cp(store.get());
    // The resident users it changed, in the same write as the others.
    w->state.DrainDirty(
        [&](std::string_view id, std::string_view bytes) { cp.PutUser(w->id, id, bytes); });
    std::string updated;
    Status s = store->ScanUsers(w->id, "", [&](std::string_view id, std::string_view bytes) {
      if (w->state.RetierEvicted(id, bytes, &updated)) {
        cp.PutUser(w->id, id, updated);
        ++changed;
      }
      return true;
    });
    if (!s.ok()) return s;
    // The changes before the users: a crash between makes them again, and
    // the feed knows it holds them.
    s = FlushChanges(w.get());
    if (!s.ok()) return s;
    std::string meta;
    w->state.EncodeMeta(w->checkpoint_seq, &meta);
    cp.PutMeta(ShardMetaKey(w->id), meta);
    cp.PutMeta(UserIndexStampKey(w->id), UserIndexStamp(meta));
    s = store->Commit(&cp, true /*sync*/);
    w->state.CheckpointDone(s.ok(), w->state.TakeNewSeen());
    if (!s.ok()) return s;
  }
  LogAt(LogLevel::kInfo, "tier rules changed: re-evaluated every user, %llu changed tier",
        static_cast<unsigned long long>(changed));
  return Status::Ok();
}

}  // namespace tierstream::pipeline
