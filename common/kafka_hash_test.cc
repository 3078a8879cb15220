#include <gtest/gtest.h>

#include "common/hash.h"

namespace tierstream {
namespace {

// librdkafka's own vectors (rdmurmur2.c's unit test), which the Java
// client's Utils.murmur2 gives too.
TEST(Murmur2, MatchesKafkasVectors) {
  EXPECT_EQ(KafkaMurmur2("kafka"), 0xd067cf64u);
  EXPECT_EQ(KafkaMurmur2(""), 0x106e08d9u);
  EXPECT_EQ(KafkaMurmur2("1234"), 0x9fc97b14u);
  EXPECT_EQ(KafkaMurmur2("giberish123456789"), 0x8f552b0cu);
  EXPECT_EQ(KafkaPartitionOf("kafka", 6), 4u);
}

TEST(KafkaPlacement, ShardOfPlacesByTheDataDirsPlacement) {
  for (const char* id : {"u0000001", "kafka", "会员-42", ""}) {
    EXPECT_EQ(ShardOf(id, 12, Placement::kKafka), KafkaPartitionOf(id, 12)) << id;
    EXPECT_EQ(ShardOf(id, 12, Placement::kHash64), ShardOf(id, 12)) << id;
  }
}

}  // namespace
}  // namespace tierstream
