// The duplicate index of one shard: marking, expiry by both horizons,
// spilling to id runs, and handing a checkpoint its new ids (their codec is
// seen_codec).
#include "state/dedup_index.h"

#include <cstring>
#include <iterator>
#include <string>

#include "state/shard_aggregates.h"

namespace tierstream::state {

namespace {

// Every day an id is kept for is an event's day or T's: a persisted day
// outside the days events can fall on is damage, and would be carried into
// the shard meta (as the forgotten-through day) that the next start refuses.
bool PlausibleDay(int64_t day) { return day >= kFirstCellDay && day <= kLastCellDay; }
}  // namespace

bool DedupIndex::MarkSeenHash(const Hash128& h, int64_t ts_ms, int32_t arrival_day,
                              int64_t max_ts) {
  // An id is kept for the horizon past the later of its event day and the
  // day it arrived (in event time): a late or back-filled event re-sent soon
  // after is still recognised.
  int32_t day = std::max(DayOf(std::max(ts_ms, max_ts), utc_offset_ms_), arrival_day);
  // An expired id may still be in a map (expiry runs in slices, a frozen map
  // is never pruned): it counts as absent.
  int32_t* seen = seen_.Find(h);
  if (seen != nullptr && *seen >= oldest_kept_day_) return false;
  if (!spilling_.empty()) {
    const int32_t* frozen = spilling_.Find(h);
    if (frozen != nullptr && (*frozen >= oldest_kept_day_ || Young(spilling_wall_ms_))) {
      return false;
    }
  }
  for (const IdRun& run : runs_) {
    if (!run.MayContain(h)) continue;
    ++id_block_reads_;
    Status s = runs_source_->ReadIdBlock(run.run_no(), run.BlockOf(h), &block_scratch_);
    bool found = false;
    int32_t found_day = 0;
    if (s.ok()) s = IdRun::FindInBlock(block_scratch_, h, &found, &found_day);
    if (!s.ok()) {
      if (id_error_.ok()) id_error_ = s;
      break;  // treated as fresh; the caller refuses the events
    }
    if (found && (found_day >= oldest_kept_day_ || Young(run.max_wall_ms()))) return false;
  }
  if (seen != nullptr) {
    *seen = day;  // its entry in the old day's list is now stale
  } else {
    seen_.TryEmplace(h, day);
  }
  RecordInBucket(day, h, now_ms_);
  new_seen_.emplace_back(h, day);
  return true;
}

void DedupIndex::RecordInBucket(int32_t day, const Hash128& h, int64_t wall_ms) {
  if (last_bucket_.first != day || last_bucket_.second == nullptr) {
    last_bucket_ = {day, &seen_by_day_[day]};  // map nodes never move
  }
  Bucket& bucket = *last_bucket_.second;
  bucket.ids.push_back(h);
  bucket.newest_wall_ms = std::max(bucket.newest_wall_ms, wall_ms);
}

const SmoothMap<Hash128, int32_t>& DedupIndex::FreezeIdsForSpill(uint64_t covers_sub,
                                                                 uint64_t* run_no,
                                                                 int64_t* max_wall_ms) {
  *run_no = next_run_no_;
  has_pending_run_ = true;
  // Ids new since the checkpoint need no seen blob: the run holds them (and
  // gives them back, to be persisted, if it cannot be written).
  new_seen_.clear();
  spilling_ = std::move(seen_);
  spilling_wall_ms_ = 0;
  spilling_covers_sub_ = covers_sub;
  spilling_first_day_ = seen_by_day_.empty() ? 0 : seen_by_day_.begin()->first;
  spilling_last_day_ = seen_by_day_.empty() ? -1 : seen_by_day_.rbegin()->first;
  for (const auto& [day, bucket] : seen_by_day_) {
    spilling_wall_ms_ = std::max(spilling_wall_ms_, bucket.newest_wall_ms);
  }
  seen_by_day_.clear();
  last_bucket_ = {kNoDay, nullptr};
  *max_wall_ms = spilling_wall_ms_;
  // The map starts over at the size it will reach, instead of rehashing its
  // way there again.
  if (memory_id_limit_ != SIZE_MAX) seen_.Reserve(memory_id_limit_ + 1);
  return spilling_;
}

bool DedupIndex::Expire(int32_t today, size_t budget) {
  // Wall-clock expiry moves in whole seconds; event-time expiry by the day.
  const int64_t now_s = now_ms_ / 1000;
  if (today != expire_today_ || now_s != expire_wall_s_) {
    expire_today_ = today;
    expire_wall_s_ = now_s;
    const int32_t event_oldest = today - horizon_days_;
    // Buckets expire in day order (they were filled in that order), each
    // once it is past both horizons; the first that is not stops expiry.
    int32_t oldest_kept = event_oldest;
    size_t expired_buckets = 0;
    for (auto it = seen_by_day_.begin(); it != seen_by_day_.end();) {
      if (it->first >= event_oldest) break;
      if (Young(it->second.newest_wall_ms)) {
        oldest_kept = it->first;
        break;
      }
      forgotten_through_day_ = std::max(forgotten_through_day_, it->first);
      expiring_.emplace_back(it->first, std::move(it->second.ids));
      if (last_bucket_.first == it->first) last_bucket_ = {kNoDay, nullptr};
      it = seen_by_day_.erase(it);
      ++expired_buckets;
    }
    oldest_kept = std::max(oldest_kept_day_, oldest_kept);
    const bool moved = oldest_kept != oldest_kept_day_;
    oldest_kept_day_ = oldest_kept;
    // A run goes once its newest id is past both horizons.
    std::erase_if(runs_, [&](const IdRun& run) {
      if (run.max_day() >= oldest_kept || Young(run.max_wall_ms())) return false;
      forgotten_through_day_ = std::max(forgotten_through_day_, run.max_day());
      spilled_ids_ -= run.count();
      expired_runs_.push_back(run.run_no());
      return true;
    });
    // Ids that expire before they were ever checkpointed need no persisting.
    if (moved || expired_buckets > 0) {
      new_seen_.EraseIf([&](const auto& entry) { return entry.second < oldest_kept; });
    }
  }
  size_t done = 0;
  while (!expiring_.empty() && done < budget) {
    auto& [day, ids] = expiring_.back();
    for (; !ids.empty() && done < budget; ++done) {
      const int32_t* s = seen_.Find(ids.back());
      if (s != nullptr && *s == day) seen_.Erase(ids.back());
      ids.pop_back();
    }
    if (ids.empty()) expiring_.pop_back();
  }
  return expiring_.empty();
}

NewSeenIds DedupIndex::TakeNewSeen() {
  // Unmarked ids were truncated away, expired ones erased by Expire.
  NewSeenIds taken(std::exchange(new_seen_, {}), BucketWalls(), now_ms_);
  return taken;
}

Status DedupIndex::LoadSeen(int32_t day, std::string_view blob) {
  if (!PlausibleDay(day)) {
    return Status::Corruption("seen ids: day " + std::to_string(day) + " out of range");
  }
  Result<SeenBlobView> view = SeenBlobView::Parse(blob);
  if (!view.ok()) return view.status();
  // A blob from before wall-clock horizons is remembered from now on.
  const int64_t wall_ms = view->wall_ms().value_or(now_ms_);
  for (size_t i = 0; i < view->size(); ++i) {
    const Hash128 h = view->id(i);
    auto [kept, fresh] = seen_.TryEmplace(h, day);
    if (!fresh && *kept >= day) continue;
    *kept = day;  // an id re-seen after it expired is kept from its later day
    RecordInBucket(day, h, wall_ms);
  }
  return Status::Ok();
}

Status DedupIndex::LoadIdRun(std::string_view descriptor) {
  IdRun run;
  Status s = IdRun::DecodeDescriptor(descriptor, &run);
  if (!s.ok()) return s;
  if (run.count() > 0 && !PlausibleDay(run.max_day())) {
    return Status::Corruption("id run: max day " + std::to_string(run.max_day()) + " out of range");
  }
  next_run_no_ = std::max(next_run_no_, run.run_no() + 1);
  // A run from before wall-clock horizons is remembered from now on.
  if (run.max_wall_ms() == 0) run.set_max_wall_ms(now_ms_);
  spilled_ids_ += run.count();
  runs_.push_back(std::move(run));
  return Status::Ok();
}

void DedupIndex::SpillDone(bool ok, IdRun* run, std::string descriptor) {
  if (!has_pending_run_) return;
  if (ok) {
    unconfirmed_runs_.push_back(UnconfirmedRun{run->run_no(), std::move(descriptor),
                                               spilling_first_day_, spilling_last_day_,
                                               spilling_covers_sub_});
    ++next_run_no_;
    spilled_ids_ += run->count();
    runs_.push_back(std::move(*run));
  } else {
    // Not spilled after all: the frozen ids are the map's again. While frozen
    // they were kept by their wall clock; lookups in the map go by day, and
    // the oldest kept day may have moved past theirs: each is kept from no
    // earlier than it (remembered longer, never shorter), and all are
    // persisted again by the next checkpoint (their old blobs may go with
    // their days).
    spilling_.ForEach([&](const Hash128& h, int32_t stored_day) {
      if (stored_day < oldest_kept_day_ && !Young(spilling_wall_ms_)) return;  // expired anyway
      const int32_t day = std::max(stored_day, oldest_kept_day_);
      auto [kept, fresh] = seen_.TryEmplace(h, day);
      if (!fresh && *kept >= oldest_kept_day_) return;  // re-seen since the freeze
      *kept = day;
      RecordInBucket(day, h, spilling_wall_ms_);
      new_seen_.emplace_back(h, day);
    });
  }
  spilling_.Clear();
  has_pending_run_ = false;
}

void DedupIndex::CheckpointDone(bool ok, NewSeenIds taken) {
  if (!ok) {
    for (const auto& entry : taken.ids()) new_seen_.push_back(entry);
    expired_runs_.insert(expired_runs_.end(), draining_runs_.begin(), draining_runs_.end());
    unconfirmed_runs_.insert(unconfirmed_runs_.begin(),
                             std::make_move_iterator(confirming_runs_.begin()),
                             std::make_move_iterator(confirming_runs_.end()));
  }
  draining_runs_.clear();
  confirming_runs_.clear();
}

}  // namespace tierstream::state
