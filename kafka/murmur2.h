// Kafka's partitioner hash: the partition a record keyed by `key` lands on
// with the Java client's default partitioner and librdkafka's
// `partitioner=murmur2_random` (`(murmur2(key) & 0x7fffffff) % partitions`),
// so that tierstream places a user where a producer keying by her id put her.
//
// Thread safety: pure functions.
#ifndef TIERSTREAM_KAFKA_MURMUR2_H_
#define TIERSTREAM_KAFKA_MURMUR2_H_

#include <cstdint>
#include <string_view>

namespace tierstream::kafka {

// Murmur2 with Kafka's seed (0x9747b28c), as librdkafka's rd_murmur2.
uint32_t Murmur2(std::string_view key);

// REQUIRES: partitions > 0.
inline uint32_t PartitionOf(std::string_view key, uint32_t partitions) {
  return (Murmur2(key) & 0x7fffffffu) % partitions;
}

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_MURMUR2_H_
