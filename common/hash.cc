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

uint32_t KafkaMurmur2(std::string_view key) {
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto* d = reinterpret_cast<const unsigned char*>(key.data());
  const size_t n = key.size();
  uint32_t h = 0x9747b28cu ^ static_cast<uint32_t>(n);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t k = static_cast<uint32_t>(d[i]) | static_cast<uint32_t>(d[i + 1]) << 8 |
                 static_cast<uint32_t>(d[i + 2]) << 16 | static_cast<uint32_t>(d[i + 3]) << 24;
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  switch (n & 3) {
    case 3:
      h ^= static_cast<uint32_t>(d[i + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(d[i + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= d[i];
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return h;
}

}  // namespace tierstream
