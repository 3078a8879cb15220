// UserTable: the users one shard holds decoded, where she is found, and
// where she goes when evicted.
//
// Users live in a slab of slots (ChunkedVector: a slot never moves and is a
// shift and a mask away) indexed by `flat_hash_map<hash64(user_id), slot>`,
// so that a lookup reads no id until the slot itself; the rare user whose
// hash another resident user already has is indexed by id on the side.
//
// Memory is bounded: EvictClean() drops users that are persisted (clean)
// and were not touched since the previous pass (CLOCK) into the warm tier
// (WarmUsers: their encoding, within a byte budget) or, past it, to the
// store alone, handing their pending tier checks to the TierTimers by the
// 64-bit hash of their id. Reload() brings one back from the warm tier or
// through the UserSource.
//
// Ownership: owned by its ShardState; the UserSource outlives it.
// Thread safety: confined — the shard's worker owns it.
#ifndef TIERSTREAM_STATE_USER_TABLE_H_
#define TIERSTREAM_STATE_USER_TABLE_H_

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/chunked_vector.h"
#include "common/hash.h"
#include "common/smooth_map.h"
#include "common/status.h"
#include "state/tier_timers.h"
#include "state/user_state.h"
#include "state/warm_users.h"

namespace tierstream::state {

// Where evicted users are reloaded from (the Store, in the pipeline).
class UserSource {
 public:
  virtual ~UserSource() = default;
  // Reads the persisted state of `user_id`; *found = false if she has none.
  virtual Status Load(std::string_view user_id, std::string* encoded, bool* found) = 0;
  // The ids of the persisted users whose hash (ShardState::HashOf) is one
  // of `hashes` (sorted, distinct) — usually one each, more when hashes
  // collide; at least every user a checkpoint's IndexSink was given with
  // one of them. Appends to *user_ids.
  virtual Status FindByHash(std::span<const uint64_t> hashes,
                            std::vector<std::string>* user_ids) = 0;
};

struct UserSlot {
  std::string id;  // empty when free
  UserState state;
  uint32_t generation = 0;  // bumped on eviction: stale timer refs skip it
  uint32_t epoch = 0;       // the checkpoint epoch she was changed in; 0: clean
  bool touched = false;     // CLOCK reference bit
  bool indexed = false;     // the source finds her by hash (she was persisted)
};

class UserTable {
 public:
  static constexpr uint32_t kAbsent = UINT32_MAX;

  // `source` may be null when nothing is ever evicted.
  explicit UserTable(UserSource* source) : source_(source) {}
  UserTable(const UserTable&) = delete;
  UserTable& operator=(const UserTable&) = delete;

  static uint64_t UserHash(std::string_view user_id) { return Hash64(user_id); }
  uint64_t HashOf(std::string_view user_id) const { return user_hash_(user_id); }
  void set_user_hash_for_testing(uint64_t (*fn)(std::string_view)) { user_hash_ = fn; }

  UserSlot& slot(uint32_t i) { return slots_[i]; }
  const UserSlot& slot(uint32_t i) const { return slots_[i]; }
  // Slots ever allocated (free ones have an empty id).
  uint32_t slot_count() const { return static_cast<uint32_t>(slots_.size()); }
  size_t resident() const { return index_.size() + collided_.size(); }

  // The slot of a resident user, or kAbsent.
  uint32_t Lookup(std::string_view user_id) const {
    const uint32_t* indexed = index_.Find(user_hash_(user_id));
    if (indexed != nullptr && slots_[*indexed].id == user_id) return *indexed;
    if (!collided_.empty()) {
      auto c = collided_.find(absl::string_view(user_id.data(), user_id.size()));
      if (c != collided_.end()) return c->second;
    }
    return kAbsent;
  }
  // A new resident user with a blank state, touched and not indexed.
  uint32_t Insert(std::string_view user_id);

  // Whether a user who is not resident may be persisted (some were evicted
  // or only registered at recovery) and can be read back.
  bool may_reload() const { return evicted_any_ && source_ != nullptr; }
  void set_evicted_any() { evicted_any_ = true; }
  // Reads an evicted user back, from the warm tier or the source, and makes
  // her resident (indexed, untouched by a checkpoint): *slot is hers, or
  // kAbsent if she is not persisted. REQUIRES: may_reload(), not resident.
  Status Reload(std::string_view user_id, uint32_t* slot);
  UserSource* source() const { return source_; }

  // Evicts clean, untouched users until at most `target` stay resident;
  // their pending checks go to `timers` by hash.
  size_t EvictClean(size_t target, TierTimers* timers);
  WarmUsers& warm() { return warm_; }
  const WarmUsers& warm() const { return warm_; }
  uint64_t reloads() const { return reloads_; }
  uint64_t warm_reloads() const { return warm_reloads_; }

  void PrefetchUser(uint64_t user_hash) const { index_.Prefetch(user_hash); }
  void PrefetchUserState(uint64_t user_hash, bool buckets) const {
    // By hash alone: comparing the id would wait for the very line prefetched.
    const uint32_t* indexed = index_.Find(user_hash);
    if (indexed == nullptr) return;
    const UserSlot& slot = slots_[*indexed];
    if (!buckets) {
      __builtin_prefetch(&slot);
      __builtin_prefetch(reinterpret_cast<const char*>(&slot) + 64);
    } else if (!slot.state.buckets.empty()) {
      __builtin_prefetch(&slot.state.buckets.back());
    }
  }

 private:
  void IndexInsert(uint32_t slot);
  void IndexErase(uint32_t slot);

  UserSource* const source_;
  ChunkedVector<UserSlot> slots_;  // slots never move, so collided_ may view their ids
  std::vector<uint32_t> free_slots_;
  // user_id -> slot, keyed by UserHash so that a lookup reads no id until
  // the slot itself; the rare user whose hash another resident user already
  // has is indexed by id in collided_ (Debian's Abseil has its own
  // string_view type: heterogeneous lookup needs it). It grows in steps,
  // not in one pause of a rehash (SmoothMap).
  SmoothMap<uint64_t, uint32_t> index_;
  absl::flat_hash_map<absl::string_view, uint32_t> collided_;
  uint64_t (*user_hash_)(std::string_view) = &UserHash;
  bool evicted_any_ = false;  // whether a miss must consult the source
  size_t clock_hand_ = 0;
  uint64_t reloads_ = 0;
  uint64_t warm_reloads_ = 0;
  WarmUsers warm_;  // evicted users kept encoded in memory
  std::string warm_buf_;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_USER_TABLE_H_
