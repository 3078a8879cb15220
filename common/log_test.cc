#include "common/log.h"

#include <gtest/gtest.h>

namespace tierstream {
namespace {

TEST(Log, TimestampsAreIsoUtcWithMilliseconds) {
  EXPECT_EQ(FormatLogTimestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatLogTimestamp(1763999999999), "2025-11-24T15:59:59.999Z");
  EXPECT_EQ(FormatLogTimestamp(1764000000007), "2025-11-24T16:00:00.007Z");
  EXPECT_EQ(FormatLogTimestamp(-1), "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace tierstream
