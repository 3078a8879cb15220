// Stable hashes of byte strings: routing users to shards and keying event ids
// in the duplicate index. Stable across runs and machines (they decide which
// shard owns persisted state). Pure functions; thread-safe.
#ifndef TIERSTREAM_COMMON_HASH_H_
#define TIERSTREAM_COMMON_HASH_H_

#include <cstdint>
#include <string_view>
#include <utility>

namespace tierstream {

struct Hash128 {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const Hash128& a, const Hash128& b) {
    return a.lo == b.lo && a.hi == b.hi;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Hash128& x) {
    return H::combine(std::move(h), x.lo);
  }
};

uint64_t Hash64(std::string_view bytes);
Hash128 HashId128(std::string_view bytes, uint64_t seed);

// The shard that owns `user_id` among `shards`.
inline uint32_t ShardOf(std::string_view user_id, uint32_t shards) {
  return static_cast<uint32_t>(Hash64(user_id) % shards);
}

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_HASH_H_
