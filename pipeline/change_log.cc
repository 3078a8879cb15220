// The workers' side of the change feed: each worker writes the tier changes
// its state made (time changes into its log in the same write, so that
// replay makes them again), recovery republishes the changes replay made
// that the feed does not hold yet, retention trims the oldest, and readers
// page through what is durable.
//
// Exactly once across crashes: the journal replays to the same changes in
// the same order (blocks carry T; time changes are journaled), and each
// shard's position in the feed (the shard_seq of its last change written)
// is written with its changes, so recovery republishes exactly those after
// it. A checkpoint counts only changes the feed holds (Checkpoint flushes).
#include <algorithm>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/pipeline_impl.h"
#include "state/log_format.h"

namespace tierstream::pipeline {

Status Pipeline::Impl::FlushChanges(Worker* w, std::string_view events_block) {
  bool events_written = events_block.empty();
  while (feed) {
    if (w->changes.empty()) {
      if (!w->state.has_changes()) break;
      w->state.TakeChanges(&w->changes);
    }
    if (w->changes_first == 0) {
      // Claim the cursors and build the write once: a retry repeats it.
      const int64_t now = WallNow();
      w->changes_values.clear();
      w->changes_block.clear();
      bool any_time = false;
      for (state::TierChange& c : w->changes) {
        c.written_ms = now;
        state::EncodeTierChange(c, &w->changes_values.emplace_back());
        // Without a journal (an offline replay) there is nothing to replay.
        if (c.cause != state::ChangeCause::kTime || !options.write_log) continue;
        if (!any_time) state::BeginLogBlock(&w->changes_block);
        any_time = true;
        state::AppendTimeChangeRecord(c.user_id, DayOf(c.at_ms, options.config.utc_offset_ms),
                                      &w->changes_block);
      }
      w->changes_log_seq = w->log_seq + 1;
      w->changes_first = feed->Claim(w->changes.size());
    }
    // The group's events go with the last of the changes made before them
    // (a retry of a failed write goes first, alone, if the state made more
    // since), after their time changes.
    const bool with_events = !events_written && !w->state.has_changes();
    const uint64_t events_seq = (w->changes_block.empty() ? w->log_seq : w->changes_log_seq) + 1;
    Status s = store->AppendChanges(
        w->id, {w->changes_log_seq, w->changes_block},
        with_events ? state::Store::LogAppend{events_seq, events_block} : state::Store::LogAppend{},
        w->changes_first, w->changes_values, w->changes.back().shard_seq, options.fsync);
    if (!s.ok()) return s;
    if (!w->changes_block.empty()) w->log_seq = w->changes_log_seq;
    if (with_events) {
      w->log_seq = events_seq;
      events_written = true;
    }
    w->feed_position = w->changes.back().shard_seq;
    if (options.placement == Placement::kKafka) {
      // For the changelog, with the next checkpoint.
      w->unexported_changes.insert(w->unexported_changes.end(), w->changes_values.begin(),
                                   w->changes_values.end());
    }
    const uint64_t first = w->changes_first;
    w->changes.clear();
    w->changes_first = 0;
    feed->Release(first);
  }
  if (events_written) return Status::Ok();
  Status s = store->AppendLog(w->id, w->log_seq + 1, events_block, options.fsync);
  if (s.ok()) ++w->log_seq;
  return s;
}

bool Pipeline::Impl::ChangesDue(Worker* w) const {
  // Under load the next group's log write carries them (no write of their
  // own); an idle worker writes them at once, so that they are served.
  return feed && (w->state.pending_changes() >= kChangesPerWrite || w->queue.size_approx() == 0);
}

Status Pipeline::Impl::RepublishReplayed(Worker* w) {
  if (!feed) return Status::Ok();
  std::vector<state::TierChange> replayed;
  w->state.TakeChanges(&replayed);
  // Those the feed holds were written before the crash, under the same
  // shard_seq (replay is deterministic); the rest are new to it.
  auto fresh = std::find_if(replayed.begin(), replayed.end(), [&](const state::TierChange& c) {
    return c.shard_seq > w->feed_position;
  });
  if (options.placement == Placement::kKafka) {
    // None of the replayed changes is in a checkpoint: the next one exports
    // them all (those the feed held too).
    for (auto it = replayed.begin(); it != fresh; ++it) {
      state::EncodeTierChange(*it, &w->unexported_changes.emplace_back());
    }
  }
  w->changes.assign(std::make_move_iterator(fresh), std::make_move_iterator(replayed.end()));
  if (w->changes.empty()) return Status::Ok();
  // Journaled already: the feed records alone.
  const int64_t now = WallNow();
  w->changes_values.clear();
  w->changes_block.clear();
  for (state::TierChange& c : w->changes) {
    c.written_ms = now;
    state::EncodeTierChange(c, &w->changes_values.emplace_back());
  }
  w->changes_log_seq = w->log_seq + 1;
  w->changes_first = feed->Claim(w->changes.size());
  return FlushChanges(w);
}

void Pipeline::Impl::TendChangeRetention() {
  if (!feed || store->failing() || Clock::now() < next_retention) return;
  next_retention = Clock::now() + std::chrono::milliseconds(options.retention_interval_ms);
  const state::ChangeLogConfig& retain = options.config.changes;
  const int64_t t = watermark.load(std::memory_order_acquire);
  const int64_t event_cutoff = t == kNoTs ? INT64_MIN : t - int64_t{retain.retain_days} * kMsPerDay;
  const int64_t wall_cutoff = WallNow() - retain.retain_wall_ms;
  const uint64_t end = feed->visible_end();
  const uint64_t from = changes_trimmed.load();
  // Over the byte budget, the oldest tenth goes whatever its age.
  uint64_t forced = from;
  if (store->ChangesBytes() > retain.max_bytes) forced = from + (end - from) / 10;
  uint64_t trim = from;
  state::TierChange c;
  Status read = store->ScanChanges(from, end, [&](uint64_t cursor, std::string_view v) {
    if (cursor > forced) {
      if (!state::DecodeTierChange(v, &c).ok()) return false;
      if (c.at_ms >= event_cutoff || c.written_ms >= wall_cutoff) return false;
    }
    trim = cursor;
    return true;
  });
  if (!read.ok() || trim == from) return;
  uint64_t trimmed = 0;
  Status s = store->TrimChanges(trim, &trimmed);
  if (!s.ok()) {
    LogAt(LogLevel::kError, "change feed: trimming through %llu failed: %s",
          static_cast<unsigned long long>(trim), s.ToString().c_str());
    return;
  }
  if (trimmed > from) changes_trimmed.store(trimmed);
}

// ---- reading

bool Pipeline::change_log() const { return impl_->feed != nullptr; }

uint64_t Pipeline::ChangesEnd() const { return impl_->feed ? impl_->feed->visible_end() - 1 : 0; }

uint64_t Pipeline::ChangesBytes() const {
  // The committer's sample: the store is not the caller's to read while
  // the committer may be reopening it.
  MutexLock lock(&impl_->figures_mu);
  return impl_->changes_bytes;
}

namespace {
// In the state database's meta, beside "shards", "tz", "shard/<i>", ...
std::string ConsumerKey(std::string_view name) { return "consumer/" + std::string(name); }
}  // namespace

// Under the readers' lock, like ReadChanges: the committer never reopens
// the store under a consumer's read or write.
Status Pipeline::GetConsumerState(std::string_view name, std::string* value, bool* found) {
  std::shared_lock<std::shared_mutex> reading(impl_->store_readers_mu);
  if (impl_->store->failing()) return Status::Unavailable("the store is recovering");
  return impl_->store->GetMeta(ConsumerKey(name), value, found);
}

Status Pipeline::PutConsumerState(std::string_view name, std::string_view value) {
  std::shared_lock<std::shared_mutex> reading(impl_->store_readers_mu);
  if (impl_->store->failing()) return Status::Unavailable("the store is recovering");
  return impl_->store->PutMeta(ConsumerKey(name), value, impl_->options.fsync);
}

uint64_t Pipeline::OnChangesAfter(uint64_t after, std::function<void()> fn) {
  if (!impl_->feed) return 0;  // nothing ever comes: the caller's deadline answers
  return impl_->feed->OnAdvance(after, std::move(fn));
}

bool Pipeline::CancelChangesWait(uint64_t token) {
  return impl_->feed && token != 0 && impl_->feed->Cancel(token);
}

ChangePage Pipeline::ReadChanges(uint64_t after, size_t limit, const ChangeFilter& filter) {
  ChangePage page;
  page.oldest = impl_->changes_trimmed.load();
  if (after == kChangesFromOldest) after = page.oldest;
  page.next = after;
  if (!impl_->feed) return page;
  if (after < page.oldest) {
    page.gone = true;
    return page;
  }
  const uint64_t end = impl_->feed->visible_end();
  std::shared_lock<std::shared_mutex> reading(impl_->store_readers_mu);
  if (impl_->store->failing()) {
    page.status = Status::Unavailable("the store is recovering from a failed write");
    return page;
  }
  // Non-matching changes are passed over, within a bound per call (the
  // scan runs on the caller's thread): `next` then says how far it got.
  size_t scanned = 0;
  const size_t max_scanned = std::max<size_t>(limit * 16, 16384);
  bool complete = true;
  state::TierChange c;
  Status decoded;
  page.status = impl_->store->ScanChanges(after, end, [&](uint64_t cursor, std::string_view v) {
    if (page.changes.size() >= limit || scanned >= max_scanned) {
      complete = false;
      return false;
    }
    ++scanned;
    decoded = state::DecodeTierChange(v, &c);
    if (!decoded.ok()) {
      complete = false;
      return false;
    }
    page.next = cursor;
    if (filter.Matches(c)) page.changes.emplace_back(cursor, c);
    return true;
  });
  if (page.status.ok()) page.status = decoded;
  // Everything up to the visible end was read: resume there (past holes).
  if (page.status.ok() && complete) page.next = std::max(page.next, end - 1);
  return page;
}

}  // namespace tierstream::pipeline
