// WarmUsers: clean users evicted from a shard's decoded slots, kept in memory
// in their encoded form (what the store holds for them) within a byte budget.
//
// A decoded user costs about 1 KB of memory, her encoding about 100 bytes: a
// shard keeps its busiest users decoded (--max-resident-users) and many more
// warm (--warm-memory-mb), so that bringing one back costs a decode (~0.1 µs)
// instead of a RocksDB read (3-5 µs). Beyond the budget the oldest entries
// go first; they are still in the store. Entries are keyed by the user's
// 64-bit hash: a second user with a hash already present is not kept warm.
//
// Thread safety: confined — the shard's worker owns it.
#ifndef TIERSTREAM_STATE_WARM_USERS_H_
#define TIERSTREAM_STATE_WARM_USERS_H_

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace tierstream::state {

class WarmUsers {
 public:
  explicit WarmUsers(size_t budget_bytes = 0) : budget_(budget_bytes) {}
  WarmUsers(const WarmUsers&) = delete;
  WarmUsers& operator=(const WarmUsers&) = delete;

  // Keeps `encoded` for `user_id` (whose hash is `hash`), with the day of her
  // next pending tier check (`due`, kept for the caller). Calls
  // dropped(user_id, encoded, due) for each older entry it lets go to stay
  // within the budget, and for the new one itself if it cannot be kept.
  // Returns whether she was kept.
  template <typename Dropped>
  bool Put(uint64_t hash, std::string_view user_id, std::string_view encoded, int32_t due,
           Dropped&& dropped);
  // The id and due day of the user kept under `hash`, if any.
  bool Peek(uint64_t hash, std::string_view* user_id, int32_t* due) const;
  // Moves her bytes into *encoded and forgets her; false if she is not here.
  bool Take(uint64_t hash, std::string_view user_id, std::string* encoded);
  bool Contains(uint64_t hash, std::string_view user_id) const;

  bool enabled() const { return budget_ > 0; }
  // A smaller budget takes effect at the next Put.
  void set_budget(size_t bytes) { budget_ = bytes; }
  size_t size() const { return map_.size(); }
  size_t bytes() const { return bytes_; }  // records plus index, approximately
  size_t fifo_size_for_testing() const { return fifo_.size(); }

 private:
  // One allocation per user: [id size: 1 byte][id][encoded].
  struct Record {
    uint32_t seq;  // matches its entry in fifo_; older entries there are stale
    uint32_t size;
    int32_t due;
    std::unique_ptr<char[]> data;
    std::string_view id() const { return {data.get() + 1, static_cast<uint8_t>(data[0])}; }
    std::string_view encoded() const {
      const size_t id_size = static_cast<uint8_t>(data[0]);
      return {data.get() + 1 + id_size, size - 1 - id_size};
    }
  };
  static constexpr size_t kOverhead = 64;  // index slot, fifo entry, allocator headers

  void Erase(absl::flat_hash_map<uint64_t, Record>::iterator it);
  void CompactFifo();

  size_t budget_;
  size_t bytes_ = 0;
  uint32_t next_seq_ = 0;
  absl::flat_hash_map<uint64_t, Record> map_;
  std::deque<std::pair<uint64_t, uint32_t>> fifo_;  // (hash, seq), oldest first
};

template <typename Dropped>
bool WarmUsers::Put(uint64_t hash, std::string_view user_id, std::string_view encoded, int32_t due,
                    Dropped&& dropped) {
  const size_t size = 1 + user_id.size() + encoded.size();
  if (user_id.size() > 255 || size + kOverhead > budget_ || map_.contains(hash)) {
    dropped(user_id, encoded, due);
    return false;
  }
  while (bytes_ + size + kOverhead > budget_ && !fifo_.empty()) {
    const auto [h, seq] = fifo_.front();
    fifo_.pop_front();
    auto it = map_.find(h);
    if (it == map_.end() || it->second.seq != seq) continue;  // stale
    dropped(it->second.id(), it->second.encoded(), it->second.due);
    Erase(it);
  }
  Record r;
  r.seq = next_seq_++;
  r.size = static_cast<uint32_t>(size);
  r.due = due;
  r.data = std::make_unique_for_overwrite<char[]>(size);
  r.data[0] = static_cast<char>(user_id.size());
  std::memcpy(r.data.get() + 1, user_id.data(), user_id.size());
  std::memcpy(r.data.get() + 1 + user_id.size(), encoded.data(), encoded.size());
  fifo_.emplace_back(hash, r.seq);
  map_.emplace(hash, std::move(r));
  bytes_ += size + kOverhead;
  if (fifo_.size() > 2 * map_.size() + 4096) CompactFifo();
  return true;
}

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_WARM_USERS_H_
