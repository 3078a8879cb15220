#include "kafka/murmur2.h"

namespace tierstream::kafka {

uint32_t Murmur2(std::string_view key) {
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

}  // namespace tierstream::kafka
