// A shard's resident users: slot allocation and index, CLOCK eviction into
// the warm tier, and reloading an evicted user.
#include "state/user_table.h"

#include <utility>

namespace tierstream::state {

namespace {
absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }
}  // namespace

void UserTable::IndexInsert(uint32_t slot) {
  const std::string& id = slots_[slot].id;
  if (!index_.TryEmplace(user_hash_(id), slot).second) collided_.emplace(Key(id), slot);
}

void UserTable::IndexErase(uint32_t slot) {
  const std::string& id = slots_[slot].id;
  const uint64_t hash = user_hash_(id);
  const uint32_t* indexed = index_.Find(hash);
  if (indexed != nullptr && *indexed == slot) {
    index_.Erase(hash);
  } else {
    collided_.erase(Key(id));
  }
}

uint32_t UserTable::Insert(std::string_view user_id) {
  uint32_t i;
  if (!free_slots_.empty()) {
    i = free_slots_.back();
    free_slots_.pop_back();
  } else {
    i = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  UserSlot& slot = slots_[i];
  slot.id.assign(user_id);
  slot.state = UserState{};
  slot.epoch = 0;
  slot.touched = true;
  slot.indexed = false;
  IndexInsert(i);
  return i;
}

Status UserTable::Reload(std::string_view user_id, uint32_t* slot) {
  *slot = kAbsent;
  std::string bytes;
  bool found = warm_.size() > 0 && warm_.Take(user_hash_(user_id), user_id, &bytes);
  if (found) {
    ++warm_reloads_;
  } else {
    Status st = source_->Load(user_id, &bytes, &found);
    if (!st.ok()) return st;
    if (!found) return Status::Ok();
  }
  UserState s;
  Status st = DecodeUserState(bytes, &s);
  if (!st.ok()) return st;
  const uint32_t i = Insert(user_id);
  slots_[i].state = std::move(s);
  slots_[i].indexed = true;
  ++reloads_;
  *slot = i;
  return Status::Ok();
}

size_t UserTable::EvictClean(size_t target, TierTimers* timers) {
  size_t evicted = 0;
  // Two turns of the clock at most: the first clears reference bits.
  for (size_t step = 0; step < 2 * slots_.size() && resident() > target; ++step) {
    if (clock_hand_ >= slots_.size()) clock_hand_ = 0;
    const uint32_t i = static_cast<uint32_t>(clock_hand_++);
    UserSlot& slot = slots_[i];
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
    auto to_cold = [this, timers](std::string_view id, std::string_view, int32_t day) {
      if (day != kNoDay) timers->AddEvicted(user_hash_(id), day);
    };
    if (warm_.enabled()) {
      warm_buf_.clear();
      EncodeUserState(slot.state, &warm_buf_);
      if (warm_.Put(hash, slot.id, warm_buf_, due, to_cold) && due != kNoDay) {
        timers->AddWarm(hash, due);
      }
    } else if (due != kNoDay) {
      timers->AddEvicted(hash, due);
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

}  // namespace tierstream::state
