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

// Murmur2 with Kafka's seed (0x9747b28c), as Kafka's Java client and
// librdkafka's rd_murmur2 compute it.
uint32_t KafkaMurmur2(std::string_view key);
// The partition of `partitions` a record keyed by `key` lands on with the
// Java client's default partitioner and librdkafka's
// `partitioner=murmur2_random`. REQUIRES: partitions > 0.
inline uint32_t KafkaPartitionOf(std::string_view key, uint32_t partitions) {
  return (KafkaMurmur2(key) & 0x7fffffffu) % partitions;
}

// How a data dir places users on shards: by Hash64 (the journal behind the
// listeners), or as Kafka places records keyed by user id, so that a shard
// is the Kafka partition of the same number (the Kafka mode).
enum class Placement : uint8_t { kHash64, kKafka };
inline uint32_t ShardOf(std::string_view user_id, uint32_t shards, Placement placement) {
  return placement == Placement::kKafka ? KafkaPartitionOf(user_id, shards)
                                        : ShardOf(user_id, shards);
}

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_HASH_H_
