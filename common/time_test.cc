#include "common/time.h"

#include <gtest/gtest.h>

namespace tierstream {
namespace {

constexpr int64_t kPlus8 = 8 * 3'600'000;

TEST(DayOf, SplitsDaysAtLocalMidnightInPlusEight) {
  // 2026-11-23T15:59:59.999Z is 23:59:59.999 on the 23rd in +08:00.
  const int64_t before = *ParseRfc3339("2026-11-23T15:59:59.999Z");
  const int64_t after = *ParseRfc3339("2026-11-23T16:00:00.000Z");
  EXPECT_EQ(DayOf(after, kPlus8), DayOf(before, kPlus8) + 1);
  EXPECT_EQ(DayOf(before, 0), DayOf(after, 0));
}

TEST(DayOf, FloorsNegativeValues) {
  EXPECT_EQ(DayOf(-1, 0), -1);
  EXPECT_EQ(DayOf(0, 0), 0);
  EXPECT_EQ(DayOf(-kMsPerDay, 0), -1);
}

TEST(ParseRfc3339, AcceptsOffsetsAndFractions) {
  EXPECT_EQ(*ParseRfc3339("2025-11-24T08:00:00+08:00"), 1763942400000);
  EXPECT_EQ(*ParseRfc3339("2025-11-24T00:00:00Z"), 1763942400000);
  EXPECT_EQ(*ParseRfc3339("2025-11-24T00:00:00.5Z"), 1763942400500);
  EXPECT_EQ(*ParseRfc3339("2025-11-24T00:00:00.123456Z"), 1763942400123);
  EXPECT_EQ(*ParseRfc3339("2025-11-23T19:00:00-05:00"), 1763942400000);
  EXPECT_EQ(*ParseRfc3339("2024-02-29T00:00:00Z"), 1709164800000);
}

TEST(ParseRfc3339, RejectsMalformedDates) {
  for (const char* bad : {"yesterday", "2026-11-24", "2026-11-24T08:00:00", "2026-13-01T00:00:00Z",
                          "2026-02-29T00:00:00Z", "2026-11-24T24:00:00Z", "2026-11-24T08:00:00+8",
                          "2026-11-24T08:00:00.Z", "2026-11-24T08:00:00Zjunk", ""}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
}

TEST(ParseUtcOffset, ParsesAndFormats) {
  EXPECT_EQ(*ParseUtcOffset("+08:00"), kPlus8);
  EXPECT_EQ(*ParseUtcOffset("-05:30"), -(5 * 60 + 30) * 60'000);
  EXPECT_EQ(*ParseUtcOffset("Z"), 0);
  EXPECT_FALSE(ParseUtcOffset("8").has_value());
  EXPECT_EQ(FormatUtcOffset(kPlus8), "+08:00");
  EXPECT_EQ(FormatUtcOffset(-(5 * 60 + 30) * 60'000), "-05:30");
}

TEST(FormatDay, GivesTheCalendarDateOfADayNumber) {
  EXPECT_EQ(FormatDay(0), "1970-01-01");
  EXPECT_EQ(FormatDay(-1), "1969-12-31");
  EXPECT_EQ(FormatDay(DayOf(1763913600000, kPlus8)), "2025-11-24");  // local midnight
  EXPECT_EQ(FormatDay(DayOf(*ParseRfc3339("2024-02-29T23:59:59+08:00"), kPlus8)), "2024-02-29");
  EXPECT_EQ(FormatDay(DayOf(*ParseRfc3339("2099-12-31T00:00:00Z"), 0)), "2099-12-31");
  // Every day of 2000..2100 round-trips through the parser.
  for (int32_t day = DayOf(kMinTsMs, 0); day < DayOf(kMaxTsMs, 0); ++day) {
    const auto ts = ParseRfc3339(FormatDay(day) + "T00:00:00Z");
    ASSERT_TRUE(ts.has_value()) << day;
    ASSERT_EQ(DayOf(*ts, 0), day) << FormatDay(day);
  }
}

}  // namespace
}  // namespace tierstream
