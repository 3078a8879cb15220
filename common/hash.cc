// The stable hashes behind shard placement and the duplicate index (XXH3).
#include "common/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace tierstream {

uint64_t Hash64(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

Hash128 HashId128(std::string_view bytes, uint64_t seed) {
  XXH128_hash_t h = XXH3_128bits_withSeed(bytes.data(), bytes.size(), seed);
  return Hash128{h.low64, h.high64};
}

}  // namespace tierstream
