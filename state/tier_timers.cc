// The tier-check index of a shard: registering checks by day and handing
// the sweep its work, day by day.
#include "state/tier_timers.h"

#include <algorithm>
#include <utility>

namespace tierstream::state {

void TierTimers::AddEvicted(uint64_t hash, int32_t day) {
  // A check of a day the sweep has taken up already is done by this sweep.
  const bool now = sweep_work_day_ != kNoDay && day <= sweep_work_day_;
  if (now) day = sweep_work_day_;
  // One entry per hash: a user evicted again and again (reloaded in
  // between) must not pile up entries. Users whose hashes collide share
  // it, due at the earliest of their days: each is re-checked then and has
  // her own timer from then on. So an entry is never dropped before its
  // day (it may stand for someone else), and a later day never replaces an
  // earlier one.
  auto [it, fresh] = evicted_due_.try_emplace(hash, day);
  if (!fresh) {
    if (it->second <= day) return;
    it->second = day;
  }
  if (now) {
    sweep_evicted_.push_back(hash);
  } else {
    evicted_timers_[day].push_back(hash);
  }
}

void TierTimers::AddWarm(uint64_t hash, int32_t day) {
  if (sweep_work_day_ != kNoDay && day <= sweep_work_day_) {
    sweep_warm_.push_back(hash);
  } else {
    warm_timers_[day].push_back(hash);
  }
}

std::span<const uint64_t> TierTimers::TakeDueEvicted(size_t max) {
  due_hashes_.clear();
  while (sweep_evicted_pos_ < sweep_evicted_.size() && due_hashes_.size() < max) {
    const uint64_t hash = sweep_evicted_[sweep_evicted_pos_++];
    // Only the hash's registered day counts (a stale entry was due on
    // another day).
    auto due = evicted_due_.find(hash);
    if (due == evicted_due_.end() || due->second > sweep_work_day_) continue;
    evicted_due_.erase(due);
    due_hashes_.push_back(hash);
  }
  // Looked up together, in hash order: one pass over the store's index.
  std::sort(due_hashes_.begin(), due_hashes_.end());
  return due_hashes_;
}

bool TierTimers::AdvanceDay(int32_t today) {
  sweep_work_.clear();
  sweep_evicted_.clear();
  sweep_warm_.clear();
  sweep_pos_ = sweep_evicted_pos_ = sweep_warm_pos_ = 0;
  if (swept_day_ >= today) return false;
  ++swept_day_;
  if (auto it = timers_.find(swept_day_); it != timers_.end()) {
    sweep_work_ = std::move(it->second);
    timers_.erase(it);
  }
  if (auto it = evicted_timers_.find(swept_day_); it != evicted_timers_.end()) {
    sweep_evicted_ = std::move(it->second);
    evicted_timers_.erase(it);
  }
  if (auto it = warm_timers_.find(swept_day_); it != warm_timers_.end()) {
    sweep_warm_ = std::move(it->second);
    warm_timers_.erase(it);
  }
  sweep_work_day_ = swept_day_;
  return true;
}

}  // namespace tierstream::state
