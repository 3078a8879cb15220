#include "state/shard_state.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/json_writer.h"
#include "common/varint.h"

namespace tierstream::state {

using ingest::Event;
using ingest::EventType;

namespace {

// Day cells cover every day an accepted ts can fall on, for any offset
// within ±24h: [2000-01-01 - 1 day, 2100-01-01 + 1 day].
constexpr int32_t kFirstDay = static_cast<int32_t>(kMinTsMs / kMsPerDay) - 2;
constexpr int32_t kLastDay = static_cast<int32_t>(kMaxTsMs / kMsPerDay) + 2;
constexpr uint8_t kMetaVersion = 2;
// Seen-id blobs: version 1 (since wall-clock horizons) opens with this byte
// and the wall-clock ms; the older form is bare 16-byte hashes.
constexpr char kSeenBlobVersion = 1;
constexpr size_t kSeenBlobHeader = 9;

// Debian's Abseil has its own string_view type: heterogeneous lookup needs it.
absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

// ---- DayHist ---------------------------------------------------------------

ShardState::DayHist::DayHist() : cells_(static_cast<size_t>(kLastDay - kFirstDay + 1), 0) {}

size_t ShardState::DayHist::Index(int32_t day) { return static_cast<size_t>(day - kFirstDay); }

int64_t ShardState::DayHist::Sum(int32_t from, int32_t to) const {
  from = std::max(from, kFirstDay);
  to = std::min(to, kLastDay);
  int64_t sum = 0;
  for (int32_t d = from; d <= to; ++d) sum += cells_[Index(d)];
  return sum;
}

void ShardState::DayHist::Encode(std::string* out) const {
  size_t nonzero = 0;
  for (int64_t v : cells_) nonzero += v != 0;
  PutVarint64(out, nonzero);
  int64_t prev = 0;
  for (size_t i = 0; i < cells_.size(); ++i) {
    if (cells_[i] == 0) continue;
    PutVarint64(out, static_cast<uint64_t>(static_cast<int64_t>(i) - prev));
    prev = static_cast<int64_t>(i);
    PutVarintSigned(out, cells_[i]);
  }
}

bool ShardState::DayHist::Decode(std::string_view* in) {
  std::fill(cells_.begin(), cells_.end(), 0);
  uint64_t n;
  if (!GetVarint64(in, &n) || n > cells_.size()) return false;
  uint64_t index = 0;
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t delta;
    int64_t v;
    if (!GetVarint64(in, &delta) || !GetVarintSigned(in, &v)) return false;
    index += delta;
    if (index >= cells_.size()) return false;
    cells_[index] = v;
  }
  return true;
}

// ---- ShardState ------------------------------------------------------------

ShardState::ShardState(uint32_t shard_id, const Config& config, UserSource* source,
                       IdRunSource* runs)
    : shard_id_(shard_id), config_(config), source_(source), runs_source_(runs) {}

uint32_t ShardState::Lookup(std::string_view user_id) const {
  auto it = index_.find(user_hash_(user_id));
  if (it != index_.end() && slots_[it->second].id == user_id) return it->second;
  if (!collided_.empty()) {
    auto c = collided_.find(Key(user_id));
    if (c != collided_.end()) return c->second;
  }
  return UINT32_MAX;
}

void ShardState::IndexInsert(uint32_t slot) {
  const std::string& id = slots_[slot].id;
  if (!index_.try_emplace(user_hash_(id), slot).second) collided_.emplace(Key(id), slot);
}

void ShardState::IndexErase(uint32_t slot) {
  const std::string& id = slots_[slot].id;
  auto it = index_.find(user_hash_(id));
  if (it != index_.end() && it->second == slot) {
    index_.erase(it);
  } else {
    collided_.erase(Key(id));
  }
}

void ShardState::PrefetchUser(uint64_t user_hash) const { index_.prefetch(user_hash); }

void ShardState::PrefetchUserState(uint64_t user_hash, bool buckets) const {
  // By hash alone: comparing the id would wait for the very line prefetched.
  auto it = index_.find(user_hash);
  if (it == index_.end()) return;
  const Slot& slot = slots_[it->second];
  if (!buckets) {
    __builtin_prefetch(&slot);
    __builtin_prefetch(reinterpret_cast<const char*>(&slot) + 64);
  } else if (!slot.state.buckets.empty()) {
    __builtin_prefetch(&slot.state.buckets.back());
  }
}

bool ShardState::MarkSeen(std::string_view id, uint64_t seed, int64_t ts_ms, int32_t arrival_day) {
  return MarkSeenHash(HashId128(id, seed), ts_ms, arrival_day);
}

bool ShardState::MarkSeenHash(const Hash128& h, int64_t ts_ms, int32_t arrival_day) {
  // An id is kept for the horizon past the later of its event day and the
  // day it arrived (in event time): a late or back-filled event re-sent soon
  // after is still recognised.
  int32_t day = std::max(DayOf(std::max(ts_ms, max_ts_), config_.utc_offset_ms), arrival_day);
  // An expired id may still be in a map (expiry runs in slices, a frozen map
  // is never pruned): it counts as absent.
  auto seen = seen_.find(h);
  if (seen != seen_.end() && seen->second >= oldest_kept_day_) return false;
  if (!spilling_.empty()) {
    auto frozen = spilling_.find(h);
    if (frozen != spilling_.end() &&
        (frozen->second >= oldest_kept_day_ || Young(spilling_wall_ms_))) {
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
  if (seen != seen_.end()) {
    seen->second = day;  // its entry in the old day's list is now stale
  } else {
    seen_.emplace(h, day);
  }
  RecordInBucket(day, h, now_ms_);
  new_seen_.emplace_back(h, day);
  return true;
}

void ShardState::RecordInBucket(int32_t day, const Hash128& h, int64_t wall_ms) {
  if (last_bucket_.first != day || last_bucket_.second == nullptr) {
    last_bucket_ = {day, &seen_by_day_[day]};  // map nodes never move
  }
  Bucket& bucket = *last_bucket_.second;
  bucket.ids.push_back(h);
  bucket.newest_wall_ms = std::max(bucket.newest_wall_ms, wall_ms);
}

const absl::flat_hash_map<Hash128, int32_t>& ShardState::FreezeIdsForSpill(uint64_t covers_sub,
                                                                           uint64_t* run_no,
                                                                           int64_t* max_wall_ms) {
  *run_no = next_run_no_;
  has_pending_run_ = true;
  // Ids new since the checkpoint need no seen blob: the run holds them (and
  // gives them back, to be persisted, if it cannot be written).
  new_seen_.clear();
  spilling_ = std::move(seen_);
  seen_ = {};
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
  if (memory_id_limit_ != SIZE_MAX) seen_.reserve(memory_id_limit_ + 1);
  return spilling_;
}

void ShardState::UnmarkSeen(std::string_view id, uint64_t seed) {
  // seen_by_day_ and new_seen_ keep a stale entry; both are filtered by seen_.
  seen_.erase(HashId128(id, seed));
}

bool ShardState::ExpireSeen(int32_t today, size_t budget) {
  // Wall-clock expiry moves in whole seconds; event-time expiry by the day.
  const int64_t now_s = now_ms_ / 1000;
  if (today != expire_today_ || now_s != expire_wall_s_) {
    expire_today_ = today;
    expire_wall_s_ = now_s;
    const int32_t event_oldest = today - config_.dedup_horizon_days;
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
      std::erase_if(new_seen_, [&](const auto& entry) { return entry.second < oldest_kept; });
    }
  }
  size_t done = 0;
  while (!expiring_.empty() && done < budget) {
    auto& [day, ids] = expiring_.back();
    for (; !ids.empty() && done < budget; ++done) {
      auto s = seen_.find(ids.back());
      if (s != seen_.end() && s->second == day) seen_.erase(s);
      ids.pop_back();
    }
    if (ids.empty()) expiring_.pop_back();
  }
  return expiring_.empty();
}

ShardState::Contribution ShardState::ContributionOf(const UserState& s) const {
  Contribution c;
  c.member = s.member();
  if (c.member) {
    if (s.last_active != kNoTs) c.last_active_day = DayOf(s.last_active, config_.utc_offset_ms);
    c.joined_day = DayOf(s.joined_at(), config_.utc_offset_ms);
  }
  c.buyer = s.orders_total >= 1;
  c.repeat_buyer = s.orders_total >= 2;
  return c;
}

void ShardState::AddContribution(const Contribution& c, int64_t sign) {
  if (c.member) {
    agg_.members += sign;
    if (c.last_active_day != kNoDay) agg_.members_by_last_active.Add(c.last_active_day, sign);
    agg_.members_by_joined.Add(c.joined_day, sign);
  }
  agg_.buyers += c.buyer ? sign : 0;
  agg_.repeat_buyers += c.repeat_buyer ? sign : 0;
}

uint32_t ShardState::NewSlot(std::string_view user_id) {
  uint32_t i;
  if (!free_slots_.empty()) {
    i = free_slots_.back();
    free_slots_.pop_back();
  } else {
    i = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[i];
  slot.id.assign(user_id);
  slot.state = UserState{};
  slot.epoch = 0;
  slot.touched = true;
  slot.indexed = false;
  IndexInsert(i);
  return i;
}

uint32_t ShardState::Find(std::string_view user_id, bool create) {
  if (const uint32_t i = Lookup(user_id); i != UINT32_MAX) {
    slots_[i].touched = true;
    return i;
  }
  if (evicted_any_ && source_ != nullptr) {
    std::string bytes;
    bool found = warm_.size() > 0 && warm_.Take(user_hash_(user_id), user_id, &bytes);
    Status st;
    if (found) {
      ++warm_reloads_;
    } else {
      st = source_->Load(user_id, &bytes, &found);
    }
    if (!st.ok()) {
      // The store is unreadable: applying to a blank state would corrupt it.
      std::fprintf(stderr, "tierstream: fatal: cannot reload user state: %s\n",
                   st.ToString().c_str());
      std::abort();
    }
    if (found) {
      UserState s;
      st = DecodeUserState(bytes, &s);
      if (!st.ok()) {
        std::fprintf(stderr, "tierstream: fatal: %s\n", st.ToString().c_str());
        std::abort();
      }
      const uint32_t i = NewSlot(user_id);
      slots_[i].state = std::move(s);
      slots_[i].indexed = true;
      ++reloads_;
      // Her tier was exact when she was evicted; schedule her next check.
      if (swept_day_ != kNoDay) {
        Schedule(i,
                 NextCheckDay(slots_[i].state, swept_day_, config_.utc_offset_ms, config_.rules));
      }
      return i;
    }
  }
  if (!create) return UINT32_MAX;
  ++agg_.users;
  return NewSlot(user_id);
}

void ShardState::MarkDirty(uint32_t slot) {
  Slot& s = slots_[slot];
  if (s.epoch != epoch_) {  // Touch() has taken her out of a pending snapshot
    s.epoch = epoch_;
    dirty_.push_back(slot);
  }
}

void ShardState::BeginSnapshot(SnapshotSink sink, IndexSink index) {
  snap_epoch_ = epoch_++;
  snap_sink_ = std::move(sink);
  snap_index_sink_ = std::move(index);
  snap_indexed_.clear();
  draining_dirty_.swap(dirty_);
  dirty_.clear();
  snap_pos_ = 0;
}

void ShardState::SnapshotUser(uint32_t slot) {
  Slot& s = slots_[slot];
  if (!s.indexed && snap_index_sink_) {
    snap_index_sink_(user_hash_(s.id), s.id);
    s.indexed = true;  // taken back if the checkpoint fails
    snap_indexed_.push_back(slot);
  }
  snap_buf_.clear();
  EncodeUserState(s.state, &snap_buf_);
  snap_sink_(std::string_view(s.id), std::string_view(snap_buf_));
  s.epoch = 0;
}

bool ShardState::SnapshotStep(size_t budget) {
  if (snap_epoch_ == 0) return true;
  const std::vector<uint32_t>& users = draining_dirty_;
  constexpr size_t kAhead = 8;
  const size_t end = users.size() - snap_pos_ > budget ? snap_pos_ + budget : users.size();
  for (size_t k = snap_pos_; k < end; ++k) {
    if (k + kAhead < users.size()) {
      const Slot& next = slots_[users[k + kAhead]];
      __builtin_prefetch(&next);
      __builtin_prefetch(reinterpret_cast<const char*>(&next) + 64);
    }
    if (k + kAhead / 2 < users.size()) {
      const Slot& soon = slots_[users[k + kAhead / 2]];
      if (!soon.state.buckets.empty()) __builtin_prefetch(soon.state.buckets.data());
    }
    // Users changed since BeginSnapshot were written by Touch() already.
    if (slots_[users[k]].epoch == snap_epoch_) SnapshotUser(users[k]);
  }
  snap_pos_ = end;
  if (snap_pos_ < users.size()) return false;
  snap_epoch_ = 0;
  snap_sink_ = nullptr;
  snap_index_sink_ = nullptr;
  return true;
}

void ShardState::Schedule(uint32_t slot, int32_t day) {
  UserState& s = slots_[slot].state;
  if (day == s.next_check_day) return;
  s.next_check_day = day;
  if (day != kNoDay) timers_[day].push_back(TimerRef{slot, slots_[slot].generation});
}

void ShardState::Reconcile(uint32_t slot, int32_t today) {
  Touch(slot);
  UserState& s = slots_[slot].state;
  PruneBuckets(&s, today);
  const Tier tier =
      EvaluateTier(s, ComputeWindows(s, today), today, config_.utc_offset_ms, config_.rules);
  if (tier != s.tier) {
    if (s.tier != Tier::kNone) --agg_.tiers[static_cast<size_t>(s.tier)];
    ++agg_.tiers[static_cast<size_t>(tier)];
    s.tier = tier;
    MarkDirty(slot);
  }
  Schedule(slot, NextCheckDay(s, today, config_.utc_offset_ms, config_.rules));
}

void ShardState::Apply(const Event& e, int32_t today) {
  if (max_ts_ == kNoTs || e.ts_ms > max_ts_) max_ts_ = e.ts_ms;
  if (swept_day_ == kNoDay) swept_day_ = today;  // nothing can be due before the first event
  const uint32_t slot = Find(e.user_id, true /*create*/);
  Touch(slot);
  UserState& s = slots_[slot].state;
  const bool is_new = s.tier == Tier::kNone;
  const Contribution before = ContributionOf(s);
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
  if (!is_new) AddContribution(before, -1);
  AddContribution(ContributionOf(s), +1);
  MarkDirty(slot);
  Reconcile(slot, today);
}

bool ShardState::Sweep(int32_t today, size_t budget) {
  if (swept_day_ == kNoDay) {
    swept_day_ = today;
    return true;
  }
  for (;;) {
    const int32_t at = std::max(today, swept_day_);
    while (sweep_pos_ < sweep_work_.size()) {
      if (budget == 0) return false;
      const TimerRef ref = sweep_work_[sweep_pos_++];
      // Refs are invalidated lazily: only a live slot's latest schedule counts.
      const Slot& slot = slots_[ref.slot];
      if (slot.generation == ref.generation && !slot.id.empty() &&
          slot.state.next_check_day == sweep_work_day_) {
        Reconcile(ref.slot, at);
        --budget;
      }
    }
    while (sweep_evicted_pos_ < sweep_evicted_.size()) {
      if (budget == 0) return false;
      // The due hashes of a slice are looked up together, in hash order: one
      // pass over the store's index rather than a lookup each (in batches,
      // so that their ids take little memory however many are due).
      constexpr size_t kLookupBatch = 4096;
      sweep_hashes_.clear();
      while (sweep_evicted_pos_ < sweep_evicted_.size() &&
             sweep_hashes_.size() < std::min(budget, kLookupBatch)) {
        const uint64_t hash = sweep_evicted_[sweep_evicted_pos_++];
        // Only the hash's registered day counts (a stale entry was due on
        // another day).
        auto due = evicted_due_.find(hash);
        if (due == evicted_due_.end() || due->second > sweep_work_day_) continue;
        evicted_due_.erase(due);
        sweep_hashes_.push_back(hash);
      }
      budget -= sweep_hashes_.size();
      if (sweep_hashes_.empty() || source_ == nullptr) continue;
      std::sort(sweep_hashes_.begin(), sweep_hashes_.end());
      // Every persisted user of these hashes who is not resident: usually
      // the one who registered each (a resident user's own timer covers her).
      sweep_ids_.clear();
      const Status st = source_->FindByHash(sweep_hashes_, &sweep_ids_);
      if (!st.ok()) {
        // The store is unreadable: a skipped check would leave a tier stale.
        std::fprintf(stderr, "tierstream: fatal: cannot find users due for a tier check: %s\n",
                     st.ToString().c_str());
        std::abort();
      }
      for (const std::string& id : sweep_ids_) {
        if (Lookup(id) != UINT32_MAX) continue;
        const uint32_t i = Find(id, false);
        if (i != UINT32_MAX) Reconcile(i, at);
      }
    }
    while (sweep_warm_pos_ < sweep_warm_.size()) {
      if (budget == 0) return false;
      const uint64_t hash = sweep_warm_[sweep_warm_pos_++];
      // Only while she is still warm under her latest due day.
      std::string_view id;
      int32_t due;
      if (!warm_.Peek(hash, &id, &due) || due == kNoDay || due > sweep_work_day_) continue;
      const std::string user(id);  // Find takes her out of the warm tier
      const uint32_t i = Find(user, false);
      if (i != UINT32_MAX) Reconcile(i, at);
      --budget;
    }
    // A check registered for this day while it was swept joined a list
    // already passed: go round again.
    if (sweep_pos_ < sweep_work_.size() || sweep_evicted_pos_ < sweep_evicted_.size() ||
        sweep_warm_pos_ < sweep_warm_.size()) {
      continue;
    }
    sweep_work_.clear();
    sweep_evicted_.clear();
    sweep_warm_.clear();
    sweep_pos_ = sweep_evicted_pos_ = sweep_warm_pos_ = 0;
    if (swept_day_ >= today) return true;
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
  }
}

size_t ShardState::EvictClean(size_t target) {
  size_t evicted = 0;
  // Two turns of the clock at most: the first clears reference bits.
  for (size_t step = 0; step < 2 * slots_.size() && resident_users() > target; ++step) {
    if (clock_hand_ >= slots_.size()) clock_hand_ = 0;
    const uint32_t i = static_cast<uint32_t>(clock_hand_++);
    Slot& slot = slots_[i];
    if (slot.id.empty() || slot.epoch != 0) continue;
    if (slot.touched) {
      slot.touched = false;
      continue;
    }
    // She is persisted: the warm tier may keep her encoding, with her next
    // tier check; whom it lets go is still in the store, and her check is
    // then kept by her hash, which the store finds her by.
    const int32_t due = slot.state.next_check_day;
    const uint64_t hash = user_hash_(slot.id);
    auto to_cold = [this](std::string_view id, std::string_view, int32_t day) {
      if (day != kNoDay) RegisterEvictedCheck(user_hash_(id), day);
    };
    if (warm_.enabled()) {
      warm_buf_.clear();
      EncodeUserState(slot.state, &warm_buf_);
      if (warm_.Put(hash, slot.id, warm_buf_, due, to_cold) && due != kNoDay) {
        RegisterWarmCheck(hash, due);
      }
    } else if (due != kNoDay) {
      RegisterEvictedCheck(hash, due);
    }
    IndexErase(i);
    slot.id.clear();
    slot.id.shrink_to_fit();
    slot.state = UserState{};
    ++slot.generation;
    free_slots_.push_back(i);
    ++evicted;
  }
  if (evicted > 0) evicted_any_ = true;
  return evicted;
}

bool ShardState::GetProfile(std::string_view user_id, int32_t today, Profile* out) {
  const uint32_t i = Find(user_id, false);
  if (i == UINT32_MAX) return false;
  *out = MakeProfile(slots_[i].id, slots_[i].state, today, config_);
  return true;
}

Profile MakeProfile(std::string_view user_id, const UserState& s, int32_t today,
                    const Config& config) {
  Profile out;
  const Windows w = ComputeWindows(s, today);
  out.user_id = std::string(user_id);
  out.member = s.member();
  out.joined_at = s.joined_at();
  out.last_active = s.last_active;
  out.interactions_7d = w.interactions_7d;
  out.interactions_30d = w.interactions_30d;
  out.orders_total = s.orders_total;
  out.orders_30d = w.orders_30d;
  out.repeat_orders = s.orders_total > 0 ? s.orders_total - 1 : 0;
  out.spend_30d_fen = w.spend_30d_fen;
  out.spend_total_fen = s.spend_total_fen;
  out.points = s.points;
  out.referrals = s.referrals;
  // Evaluated now, so a profile is exact even while a sweep is in progress.
  out.tier = EvaluateTier(s, w, today, config.utc_offset_ms, config.rules);
  return out;
}

std::string RenderProfileJson(const Profile& p, int64_t as_of) {
  std::string out;
  out.reserve(384);
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("user_id").String(p.user_id);
  w.Key("as_of").Int(as_of);
  w.Key("member").Bool(p.member);
  w.Key("joined_at").Int(p.joined_at);
  w.Key("last_active");
  if (p.last_active == kNoTs) {
    w.Null();
  } else {
    w.Int(p.last_active);
  }
  w.Key("interactions_7d").Int(p.interactions_7d);
  w.Key("interactions_30d").Int(p.interactions_30d);
  w.Key("orders_total").Int(p.orders_total);
  w.Key("orders_30d").Int(p.orders_30d);
  w.Key("repeat_orders").Int(p.repeat_orders);
  w.Key("spend_30d").Yuan(p.spend_30d_fen);
  w.Key("spend_total").Yuan(p.spend_total_fen);
  w.Key("points").Int(p.points);
  w.Key("referrals").Int(p.referrals);
  w.Key("tier").String(TierName(p.tier));
  w.EndObject();
  return out;
}

KpiPartial ShardState::Kpis(int32_t today) const {
  KpiPartial k;
  k.users_total = agg_.users;
  k.members = agg_.members;
  k.tiers = agg_.tiers;
  k.buyers_total = agg_.buyers;
  k.repeat_buyers_total = agg_.repeat_buyers;
  k.events_accepted = agg_.accepted;
  k.events_duplicate = agg_.duplicates;
  k.events_rejected = agg_.rejected;
  if (today == kNoDay) return k;
  const int32_t from = today - kWindow30 + 1;
  k.mau = agg_.members_by_last_active.Sum(from, today);
  k.dau = agg_.members_by_last_active.Sum(today, today);
  k.new_members_30d = agg_.members_by_joined.Sum(from, today);
  k.orders_30d = agg_.orders.Sum(from, today);
  k.community_orders_30d = agg_.community_orders.Sum(from, today);
  k.gmv_30d_fen = agg_.gmv_fen.Sum(from, today);
  k.refunds_30d_fen = agg_.refunds_fen.Sum(from, today);
  k.referred_joins_30d = agg_.referred_joins.Sum(from, today);
  k.referred_joins_prev_30d = agg_.referred_joins.Sum(from - kWindow30, from - 1);
  return k;
}

// ---- persistence -----------------------------------------------------------

void ShardState::EncodeMeta(uint64_t log_seq, std::string* out) const {
  out->push_back(static_cast<char>(kMetaVersion));
  PutVarint64(out, shard_id_);
  PutVarint64(out, log_seq);
  PutVarintSigned(out, max_ts_);
  // The last day whose tier checks are all done: while a day is being swept
  // in slices, its remaining checks are rebuilt from it after a restart.
  const bool day_in_progress = sweep_pos_ < sweep_work_.size() ||
                               sweep_evicted_pos_ < sweep_evicted_.size() ||
                               sweep_warm_pos_ < sweep_warm_.size();
  PutVarintSigned(out, day_in_progress && swept_day_ != kNoDay ? swept_day_ - 1 : swept_day_);
  for (int64_t v :
       {agg_.users, agg_.members, agg_.buyers, agg_.repeat_buyers, agg_.accepted, agg_.duplicates,
        agg_.rejected, agg_.beyond_horizon, int64_t{forgotten_through_day_}}) {
    PutVarintSigned(out, v);
  }
  for (int64_t v : agg_.tiers) PutVarintSigned(out, v);
  for (const DayHist* h :
       {&agg_.members_by_last_active, &agg_.members_by_joined, &agg_.orders, &agg_.community_orders,
        &agg_.gmv_fen, &agg_.refunds_fen, &agg_.referred_joins}) {
    h->Encode(out);
  }
}

Status ShardState::DecodeMeta(std::string_view in, uint64_t* log_seq) {
  auto bad = [](const char* what) {
    return Status::Corruption(std::string("shard meta: ") + what);
  };
  // Version 1 kept the process-wide rejected count in shard 0's header and
  // did not persist duplicates-beyond-horizon bookkeeping.
  const uint8_t version = in.empty() ? 0 : static_cast<uint8_t>(in[0]);
  if (version != 1 && version != kMetaVersion) return bad("unknown version");
  in.remove_prefix(1);
  uint64_t shard;
  int64_t swept, v1_rejected = 0;
  if (!GetVarint64(&in, &shard) || shard != shard_id_) return bad("shard id mismatch");
  if (!GetVarint64(&in, log_seq) || (version == 1 && !GetVarintSigned(&in, &v1_rejected)) ||
      !GetVarintSigned(&in, &max_ts_) || !GetVarintSigned(&in, &swept)) {
    return bad("truncated header");
  }
  if ((swept != kNoDay && (swept < kFirstDay || swept > kLastDay)) ||
      (max_ts_ != kNoTs && !TsInRange(max_ts_))) {
    return bad("watermark out of range");
  }
  swept_day_ = static_cast<int32_t>(swept);
  for (int64_t* v : {&agg_.users, &agg_.members, &agg_.buyers, &agg_.repeat_buyers, &agg_.accepted,
                     &agg_.duplicates}) {
    if (!GetVarintSigned(&in, v)) return bad("truncated counters");
  }
  if (version == 1) {
    agg_.rejected = v1_rejected;
    agg_.beyond_horizon = 0;
    // Unknown: ids past the event-time horizon may have been forgotten.
    forgotten_through_day_ = max_ts_ == kNoTs
                                 ? kNoDay
                                 : std::max(kFirstDay, DayOf(max_ts_, config_.utc_offset_ms) -
                                                           config_.dedup_horizon_days - 1);
  } else {
    int64_t forgotten;
    if (!GetVarintSigned(&in, &agg_.rejected) || !GetVarintSigned(&in, &agg_.beyond_horizon) ||
        !GetVarintSigned(&in, &forgotten)) {
      return bad("truncated counters");
    }
    if (forgotten != kNoDay && (forgotten < kFirstDay || forgotten > kLastDay)) {
      return bad("forgotten day out of range");
    }
    forgotten_through_day_ = static_cast<int32_t>(forgotten);
  }
  for (int64_t& v : agg_.tiers) {
    if (!GetVarintSigned(&in, &v)) return bad("truncated tiers");
  }
  for (DayHist* h :
       {&agg_.members_by_last_active, &agg_.members_by_joined, &agg_.orders, &agg_.community_orders,
        &agg_.gmv_fen, &agg_.refunds_fen, &agg_.referred_joins}) {
    if (!h->Decode(&in)) return bad("histogram");
  }
  if (!in.empty()) return bad("trailing bytes");
  return Status::Ok();
}

Status ShardState::LoadUser(std::string_view user_id, std::string_view encoded, bool resident) {
  UserState s;
  Status st = DecodeUserState(encoded, &s);
  if (!st.ok()) return st;
  if (resident) {
    const uint32_t i = NewSlot(user_id);
    slots_[i].state = std::move(s);
    slots_[i].touched = false;
    slots_[i].indexed = true;
    return Status::Ok();
  }
  evicted_any_ = true;
  if (swept_day_ != kNoDay) {
    const int32_t next = NextCheckDay(s, swept_day_, config_.utc_offset_ms, config_.rules);
    if (next != kNoDay) RegisterEvictedCheck(user_hash_(user_id), next);
  }
  return Status::Ok();
}

void ShardState::RegisterEvictedCheck(uint64_t hash, int32_t day) {
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

void ShardState::RegisterWarmCheck(uint64_t hash, int32_t day) {
  if (sweep_work_day_ != kNoDay && day <= sweep_work_day_) {
    sweep_warm_.push_back(hash);
  } else {
    warm_timers_[day].push_back(hash);
  }
}

void ShardState::BeginSeenBlob(int64_t wall_ms, std::string* out) {
  out->push_back(kSeenBlobVersion);
  out->append(reinterpret_cast<const char*>(&wall_ms), 8);
}

void ShardState::AppendSeenId(const Hash128& h, std::string* out) {
  out->append(reinterpret_cast<const char*>(&h.lo), 8);
  out->append(reinterpret_cast<const char*>(&h.hi), 8);
}

Status ShardState::LoadSeen(int32_t day, std::string_view blob) {
  // A blob from before wall-clock horizons is remembered from now on.
  int64_t wall_ms = now_ms_;
  if (blob.size() % 16 == kSeenBlobHeader % 16 && !blob.empty() && blob[0] == kSeenBlobVersion) {
    std::memcpy(&wall_ms, blob.data() + 1, 8);
    blob.remove_prefix(kSeenBlobHeader);
  }
  if (blob.size() % 16 != 0) return Status::Corruption("seen ids: bad length");
  for (size_t i = 0; i < blob.size(); i += 16) {
    Hash128 h;
    std::memcpy(&h.lo, blob.data() + i, 8);
    std::memcpy(&h.hi, blob.data() + i + 8, 8);
    auto [it, fresh] = seen_.try_emplace(h, day);
    if (!fresh && it->second >= day) continue;
    it->second = day;  // an id re-seen after it expired is kept from its later day
    RecordInBucket(day, h, wall_ms);
  }
  return Status::Ok();
}

Status ShardState::LoadIdRun(std::string_view descriptor) {
  IdRun run;
  Status s = IdRun::DecodeDescriptor(descriptor, &run);
  if (!s.ok()) return s;
  next_run_no_ = std::max(next_run_no_, run.run_no() + 1);
  // A run from before wall-clock horizons is remembered from now on.
  if (run.max_wall_ms() == 0) run.set_max_wall_ms(now_ms_);
  spilled_ids_ += run.count();
  runs_.push_back(std::move(run));
  return Status::Ok();
}

void ShardState::SpillDone(bool ok, IdRun* run, std::string descriptor) {
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
    for (const auto& [h, stored_day] : spilling_) {
      if (stored_day < oldest_kept_day_ && !Young(spilling_wall_ms_)) continue;  // expired anyway
      const int32_t day = std::max(stored_day, oldest_kept_day_);
      auto [it, fresh] = seen_.try_emplace(h, day);
      if (!fresh && it->second >= oldest_kept_day_) continue;  // re-seen since the freeze
      it->second = day;
      RecordInBucket(day, h, spilling_wall_ms_);
      new_seen_.emplace_back(h, day);
    }
  }
  spilling_ = {};
  has_pending_run_ = false;
}

void ShardState::CheckpointDone(bool ok) {
  if (snap_epoch_ != 0) {  // misuse: a snapshot not finished cannot have been written
    snap_epoch_ = 0;
    snap_sink_ = nullptr;
    snap_index_sink_ = nullptr;
    ok = false;
  }
  if (!ok) {
    // Changed again since the snapshot or not, each is still to be written,
    // and those it would have persisted first to be indexed again.
    for (uint32_t i : snap_indexed_) slots_[i].indexed = false;
    for (uint32_t i : draining_dirty_) MarkDirty(i);
    new_seen_.insert(new_seen_.end(), draining_seen_.begin(), draining_seen_.end());
    expired_runs_.insert(expired_runs_.end(), draining_runs_.begin(), draining_runs_.end());
    unconfirmed_runs_.insert(unconfirmed_runs_.begin(),
                             std::make_move_iterator(confirming_runs_.begin()),
                             std::make_move_iterator(confirming_runs_.end()));
  }
  draining_dirty_.clear();
  draining_seen_.clear();
  draining_runs_.clear();
  confirming_runs_.clear();
  snap_indexed_.clear();
}

void ShardState::RebuildTimers() {
  if (swept_day_ == kNoDay) return;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].id.empty()) continue;
    UserState& s = slots_[i].state;
    s.next_check_day = kNoDay;
    Schedule(i, NextCheckDay(s, swept_day_, config_.utc_offset_ms, config_.rules));
  }
}

uint64_t ShardState::RetierResident() {
  if (swept_day_ == kNoDay) return 0;
  uint64_t changed = 0;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].id.empty()) continue;
    const Tier before = slots_[i].state.tier;
    Reconcile(i, swept_day_);
    changed += slots_[i].state.tier != before;
  }
  return changed;
}

bool ShardState::RetierEvicted(std::string_view user_id, std::string_view encoded,
                               std::string* updated) {
  if (swept_day_ == kNoDay || Lookup(user_id) != UINT32_MAX) return false;
  UserState s;
  if (!DecodeUserState(encoded, &s).ok()) return false;
  const Tier tier = EvaluateTier(s, ComputeWindows(s, swept_day_), swept_day_,
                                 config_.utc_offset_ms, config_.rules);
  if (tier == s.tier) return false;
  if (s.tier != Tier::kNone) --agg_.tiers[static_cast<size_t>(s.tier)];
  ++agg_.tiers[static_cast<size_t>(tier)];
  s.tier = tier;
  updated->clear();
  EncodeUserState(s, updated);
  return true;
}

}  // namespace tierstream::state
