#include "kafka/murmur2.h"

#include <gtest/gtest.h>

namespace tierstream::kafka {
namespace {

// librdkafka's own vectors (rdmurmur2.c's unit test), which the Java
// client's Utils.murmur2 gives too.
TEST(Murmur2, MatchesKafkasVectors) {
  EXPECT_EQ(Murmur2("kafka"), 0xd067cf64u);
  EXPECT_EQ(Murmur2(""), 0x106e08d9u);
  EXPECT_EQ(Murmur2("1234"), 0x9fc97b14u);
  EXPECT_EQ(Murmur2("giberish123456789"), 0x8f552b0cu);
  EXPECT_EQ(PartitionOf("kafka", 6), 4u);
}

}  // namespace
}  // namespace tierstream::kafka
