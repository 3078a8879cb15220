// What a shard does with events, time and queries across its parts:
// applying an event, the sweep of tier checks as T crosses a day, and
// reading a user back for either.
#include "state/shard_state.h"

#include <algorithm>

namespace tierstream::state {

using ingest::Event;
using ingest::EventType;

namespace {
absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }
}  // namespace

uint32_t ShardState::Find(std::string_view user_id, bool create, Status* error) {
  if (const uint32_t i = users_.Lookup(user_id); i != UserTable::kAbsent) {
    users_.slot(i).touched = true;
    return i;
  }
  const bool prepared_absent =
      create && !prepared_absent_.empty() && prepared_absent_.erase(Key(user_id)) > 0;
  if (users_.may_reload() && !prepared_absent) {
    uint32_t i;
    const Status st = users_.Reload(user_id, &i);
    if (!st.ok()) {
      // Applying to a blank state would overwrite her persisted one.
      *error = st;
      return UserTable::kAbsent;
    }
    if (i != UserTable::kAbsent) {
      // Her tier was exact when she was evicted; schedule her next check.
      if (timers_.swept_day() != kNoDay) {
        Schedule(i, NextCheck(users_.slot(i).state, timers_.swept_day()));
      }
      return i;
    }
  }
  if (!create) return UserTable::kAbsent;
  ++agg_.users;
  return users_.Insert(user_id);
}

Status ShardState::PrepareUserSlow(std::string_view user_id) {
  if (users_.Lookup(user_id) != UserTable::kAbsent) return Status::Ok();
  if (prepared_absent_.contains(Key(user_id))) return Status::Ok();
  uint32_t i;
  const Status st = users_.Reload(user_id, &i);
  if (!st.ok()) return st;
  if (i == UserTable::kAbsent) {
    prepared_absent_.emplace(user_id);
  } else if (timers_.swept_day() != kNoDay) {
    Schedule(i, NextCheck(users_.slot(i).state, timers_.swept_day()));
  }
  return Status::Ok();
}

void ShardState::Reconcile(uint32_t slot, int32_t today) {
  checkpoint_.Touch(users_, slot);
  UserState& s = users_.slot(slot).state;
  PruneBuckets(&s, today);
  const Tier tier =
      EvaluateTier(s, ComputeWindows(s, today), today, config_.utc_offset_ms, config_.rules);
  if (tier != s.tier) {
    agg_.MoveTier(s.tier, tier);
    const Tier from = s.tier;
    s.tier = tier;
    checkpoint_.MarkDirty(users_, slot);
    if (record_changes_) {
      if (cause_.kind == ChangeCause::kTime)
        cause_.at_ms = DayStartMs(today, config_.utc_offset_ms);
      RecordChange(users_.slot(slot).id, &s, from);
    }
  }
  Schedule(slot, NextCheck(s, today));
}

void ShardState::RecordChange(std::string_view user_id, UserState* s, Tier from) {
  TierChange& c = changes_.emplace_back();
  c.shard_seq = ++change_seq_;
  c.user_id.assign(user_id);
  c.seq = ++s->changes;
  c.from = from;
  c.to = s->tier;
  c.at_ms = cause_.at_ms;
  c.cause = cause_.kind;
  c.cause_ref.assign(cause_.ref);
}

Status ShardState::ReplayTimeChange(std::string_view user_id, int32_t day) {
  Status error;
  const uint32_t slot = Find(user_id, false, &error);
  if (slot == UserTable::kAbsent) {
    if (!error.ok()) return error;
    return Status::Corruption("journaled time change of unknown user " + std::string(user_id));
  }
  cause_ = Cause{ChangeCause::kTime, {}, 0};
  Reconcile(slot, day);
  return Status::Ok();
}

void ShardState::Apply(const Event& e, int32_t today, int64_t t_ms) {
  if (max_ts_ == kNoTs || e.ts_ms > max_ts_) max_ts_ = e.ts_ms;
  cause_ = Cause{ChangeCause::kEvent, e.event_id, t_ms == kNoTs ? max_ts_ : t_ms};
  // Nothing can be due before the first event.
  if (timers_.swept_day() == kNoDay) timers_.set_swept_day(today);
  Status error;
  const uint32_t slot = Find(e.user_id, true /*create*/, &error);
  if (slot == UserTable::kAbsent) {  // she could not be read back
    KeepUserError(error);
    return;
  }
  checkpoint_.Touch(users_, slot);
  UserState& s = users_.slot(slot).state;
  const bool is_new = s.tier == Tier::kNone;
  const Contribution before = ShardAggregates::ContributionOf(s, config_.utc_offset_ms);
  if (e.type == EventType::kReferralCredit) {
    ApplyReferralCredit(&s, e.ts_ms);
  } else {
    ++agg_.accepted;
    ApplyOwnEvent(&s, e, config_.utc_offset_ms, today);
    const int32_t day = DayOf(e.ts_ms, config_.utc_offset_ms);
    switch (e.type) {
      case EventType::kOrder:
        agg_.orders.Add(day, 1);
        if (e.community) agg_.community_orders.Add(day, 1);
        agg_.gmv_fen.Add(day, e.amount_fen);
        break;
      case EventType::kRefund:
        agg_.refunds_fen.Add(day, e.amount_fen);
        break;
      case EventType::kJoin:
        if (!e.referrer_id.empty() && e.referrer_id != e.user_id) agg_.referred_joins.Add(day, 1);
        break;
      default:
        break;
    }
  }
  if (!is_new) agg_.AddContribution(before, -1);
  agg_.AddContribution(ShardAggregates::ContributionOf(s, config_.utc_offset_ms), +1);
  checkpoint_.MarkDirty(users_, slot);
  Reconcile(slot, today);
}

bool ShardState::Sweep(int32_t today, size_t budget) {
  cause_ = Cause{ChangeCause::kTime, {}, 0};  // at: the start of the day swept
  if (timers_.swept_day() == kNoDay) {
    timers_.set_swept_day(today);
    return true;
  }
  for (;;) {
    // Each due user is re-evaluated as of the day she is due, not T's: when
    // T jumped days ahead, a tier that changed on the way changes on its own
    // day (a time change's `at`), and her next check, if it is due by
    // today too, comes up again later in this sweep.
    const int32_t at = timers_.work_day();
    while (timers_.HasResidentWork()) {
      if (budget == 0) return false;
      const TimerRef ref = timers_.NextResident();
      // Refs are invalidated lazily: only a live slot's latest schedule counts.
      const UserSlot& slot = users_.slot(ref.slot);
      if (slot.generation == ref.generation && !slot.id.empty() &&
          slot.state.next_check_day == timers_.work_day()) {
        Reconcile(ref.slot, at);
        --budget;
      }
    }
    while (timers_.HasEvictedWork()) {
      if (budget == 0) return false;
      // The due hashes of a slice are looked up together, in hash order: one
      // pass over the store's index rather than a lookup each (in batches,
      // so that their ids take little memory however many are due).
      constexpr size_t kLookupBatch = 4096;
      const std::span<const uint64_t> due = timers_.TakeDueEvicted(std::min(budget, kLookupBatch));
      budget -= due.size();
      if (due.empty() || users_.source() == nullptr) continue;
      // Every persisted user of these hashes who is not resident: usually
      // the one who registered each (a resident user's own timer covers her).
      sweep_ids_.clear();
      Status st = users_.source()->FindByHash(due, &sweep_ids_);
      if (!st.ok()) {
        // A skipped check would leave a tier stale: the next sweep retries.
        for (const uint64_t hash : due) timers_.AddEvicted(hash, timers_.work_day());
        KeepUserError(st);
        return false;
      }
      bool failed = false;
      for (const std::string& id : sweep_ids_) {
        if (users_.Lookup(id) != UserTable::kAbsent) continue;
        Status error;
        const uint32_t i = Find(id, false, &error);
        if (i != UserTable::kAbsent) {
          Reconcile(i, at);
        } else if (!error.ok()) {
          timers_.AddEvicted(users_.HashOf(id), timers_.work_day());
          KeepUserError(error);
          failed = true;
        }
      }
      if (failed) return false;
    }
    uint64_t hash;
    while (timers_.HasWarmWork()) {
      if (budget == 0) return false;
      timers_.NextWarm(&hash);
      // Only while she is still warm under her latest due day.
      std::string_view id;
      int32_t due;
      if (!users_.warm().Peek(hash, &id, &due) || due == kNoDay || due > timers_.work_day()) {
        continue;
      }
      const std::string user(id);  // Find takes her out of the warm tier
      Status error;
      const uint32_t i = Find(user, false, &error);
      if (i != UserTable::kAbsent) {
        Reconcile(i, at);
      } else if (!error.ok()) {
        timers_.AddEvicted(hash, timers_.work_day());  // the store still has her
        KeepUserError(error);
        return false;
      }
      --budget;
    }
    // A check registered for this day while it was swept joined a list
    // already passed: go round again.
    if (timers_.DayInProgress()) continue;
    if (!timers_.AdvanceDay(today)) return true;
  }
}

bool ShardState::GetProfile(std::string_view user_id, int32_t today, Profile* out) {
  Status error;
  const uint32_t i = Find(user_id, false, &error);
  if (i == UserTable::kAbsent) {
    KeepUserError(error);
    return false;
  }
  *out = MakeProfile(users_.slot(i).id, users_.slot(i).state, today, config_);
  return true;
}

const UserState* ShardState::GetUserState(std::string_view user_id) {
  Status error;
  const uint32_t i = Find(user_id, false, &error);
  if (i == UserTable::kAbsent) {
    KeepUserError(error);
    return nullptr;
  }
  return &users_.slot(i).state;
}

}  // namespace tierstream::state
