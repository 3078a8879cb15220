// SmoothMap: a hash map that grows without a pause.
//
// absl::flat_hash_map rehashes every entry at once when it fills: at a
// million entries that is ~100-200 ms inside one insert, during which the
// shard that owns it acknowledges nothing. SmoothMap instead starts a table
// twice the size and moves the full one's entries into it a few per insert
// or erase (lookups try both meanwhile), so none does more than a few
// entries' work. Erased entries leave tombstones that fill an absl table as
// entries do (it then rehashes in place, as long a pause): they are counted,
// and a table full of them is rebuilt the same way. Below kSmoothFrom
// entries it grows as absl's does (a rehash that small is cheap).
//
// Its tables' memory comes from a PageReserve: the next table is mapped and
// its pages touched in the background once the current one is 3/4 full, so
// that the move's first inserts do not each take page faults (on a VM, 10+ µs
// each), and a table moved out of is unmapped in the background too.
//
// Values are reached through pointers, valid until the next insert or
// erase. Thread safety: as absl's maps (const members may run concurrently
// with each other, nothing else may).
#ifndef TIERSTREAM_COMMON_SMOOTH_MAP_H_
#define TIERSTREAM_COMMON_SMOOTH_MAP_H_

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

#include "common/page_reserve.h"

namespace tierstream {

template <typename K, typename V, typename Hash = absl::Hash<K>>
class SmoothMap {
 public:
  using Map =
      absl::flat_hash_map<K, V, Hash, std::equal_to<K>, ReserveAllocator<std::pair<const K, V>>>;
  static constexpr size_t kSmoothFrom = 1 << 16;
  // Entries moved per insert or erase while growing. The new table holds
  // twice the old one's entries before it fills, so the move is over long
  // before.
  static constexpr int kStep = 2;

  SmoothMap() : next_(old_.begin()) {}
  SmoothMap(const SmoothMap&) = delete;
  SmoothMap& operator=(const SmoothMap&) = delete;
  SmoothMap(SmoothMap&& o) noexcept { *this = std::move(o); }
  SmoothMap& operator=(SmoothMap&& o) noexcept {
    cur_ = std::move(o.cur_);
    old_ = std::move(o.old_);
    reserve_ = std::move(o.reserve_);  // the tables' allocators point at it
    erased_ = o.erased_;
    prepared_for_ = o.prepared_for_;
    next_ = old_.begin();  // o's iterator need not survive the move
    o.Clear();
    return *this;
  }

  size_t size() const { return cur_.size() + old_.size(); }
  bool empty() const { return cur_.empty() && old_.empty(); }
  // Whether entries are being moved into the new table (for tests).
  bool growing() const { return !old_.empty(); }
  // Whether the next table is being (or has been) made ready (for tests).
  bool next_table_prepared() const {
    return prepared_for_ != 0 && prepared_for_ == cur_.capacity();
  }
  const PageReserve& reserve() const { return *reserve_; }

  V* Find(const K& k) {
    auto it = cur_.find(k);
    if (it != cur_.end()) return &it->second;
    if (old_.empty()) return nullptr;
    it = old_.find(k);
    return it == old_.end() ? nullptr : &it->second;
  }
  const V* Find(const K& k) const { return const_cast<SmoothMap*>(this)->Find(k); }

  // Inserts k -> v unless k is there; returns its value and whether it was
  // inserted.
  std::pair<V*, bool> TryEmplace(const K& k, const V& v) {
    if (!old_.empty()) {
      Step();
      if (!old_.empty()) {
        auto it = old_.find(k);
        if (it != old_.end()) return {&it->second, false};
      }
    } else if (cur_.size() >= kSmoothFrom) {
      const size_t load = cur_.size() + erased_ + 1;
      const size_t capacity = cur_.capacity();
      if (load > MaxLoad(capacity)) {
        auto it = cur_.find(k);
        if (it != cur_.end()) return {&it->second, false};
        Grow();
      } else if (load > MaxLoad(capacity) / 4 * 3 && prepared_for_ != capacity) {
        PrepareNextTable();
      }
    }
    auto [it, fresh] = cur_.try_emplace(k, v);
    return {&it->second, fresh};
  }

  // Erases k; false if it was not there.
  bool Erase(const K& k) {
    if (!old_.empty()) Step();
    if (cur_.erase(k) > 0) {
      ++erased_;
      return true;
    }
    if (old_.empty()) return false;
    auto it = old_.find(k);
    if (it == old_.end()) return false;
    if (it == next_) ++next_;
    old_.erase(it);
    if (old_.empty()) Done();
    return true;
  }

  void Prefetch(const K& k) const {
    cur_.prefetch(k);
    if (!old_.empty()) old_.prefetch(k);
  }

  // Calls fn(key, value) for every entry, in no particular order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& [k, v] : cur_) fn(k, v);
    for (const auto& [k, v] : old_) fn(k, v);
  }

  // Room for n entries without growing (finishes a growth in progress).
  void Reserve(size_t n) {
    while (!old_.empty()) Step();
    cur_.reserve(n);
  }

  void Clear() {
    if (reserve_ == nullptr) reserve_ = std::make_unique<PageReserve>();
    cur_ = NewMap();
    old_ = NewMap();
    next_ = old_.begin();
    erased_ = 0;
    prepared_for_ = 0;
  }

 private:
  // absl's tables hold at most 7/8 of their capacity.
  static size_t MaxLoad(size_t capacity) { return capacity - capacity / 8; }

  Map NewMap() { return Map(0, Hash(), std::equal_to<K>(), Alloc(reserve_.get())); }

  // Grow() reserves room for twice the entries of a full table of capacity
  // c (2^k - 1): absl makes that 2c + 1 slots, each a value and a control
  // byte, after a few bytes of header.
  void PrepareNextTable() {
    prepared_for_ = cur_.capacity();
    const size_t slots = 2 * prepared_for_ + 1;
    reserve_->Prepare(slots * (sizeof(typename Map::value_type) + 1) + 64);
  }

  void Grow() {
    old_ = std::move(cur_);
    cur_ = NewMap();
    cur_.reserve(old_.size() * 2);
    next_ = old_.begin();
    erased_ = 0;
  }

  void Step() {
    for (int i = 0; i < kStep && next_ != old_.end(); ++i) {
      cur_.emplace(next_->first, std::move(next_->second));
      old_.erase(next_++);
    }
    if (next_ == old_.end()) Done();
  }

  void Done() {
    old_ = NewMap();  // frees its table (in the background)
    next_ = old_.begin();
  }

  using Alloc = ReserveAllocator<std::pair<const K, V>>;

  std::unique_ptr<PageReserve> reserve_ = std::make_unique<PageReserve>();  // before the tables
  Map cur_ = NewMap();
  Map old_ = NewMap();           // being moved into cur_ while not empty
  typename Map::iterator next_;  // old_'s next entry to move
  size_t erased_ = 0;            // erases from cur_ since it was made: at most its tombstones
  size_t prepared_for_ = 0;      // the capacity whose successor was asked of reserve_
};

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_SMOOTH_MAP_H_
