#include "server/url.h"

#include <gtest/gtest.h>

namespace tierstream::server {
namespace {

TEST(PercentDecode, DecodesEscapesInEitherCase) {
  std::string out;
  ASSERT_TRUE(PercentDecode("u%2F1%2f%41", &out));
  EXPECT_EQ(out, "u/1/A");
  ASSERT_TRUE(PercentDecode("plain+text", &out));
  EXPECT_EQ(out, "plain+text");  // '+' is a space in queries only
  ASSERT_TRUE(PercentDecode("%00", &out));
  EXPECT_EQ(out, std::string(1, '\0'));
}

TEST(PercentDecode, RejectsTruncatedAndNonHexEscapes) {
  std::string out;
  EXPECT_FALSE(PercentDecode("%", &out));
  EXPECT_FALSE(PercentDecode("a%4", &out));
  EXPECT_FALSE(PercentDecode("%G1", &out));
  EXPECT_FALSE(PercentDecode("%1x", &out));
}

TEST(QueryParam, FindsTheFirstValueOfAKeyAndDecodesIt) {
  bool malformed = true;
  EXPECT_EQ(QueryParam("limit=3&after=a%20b+c", "after", &malformed), "a b c");
  EXPECT_FALSE(malformed);
  EXPECT_EQ(QueryParam("after=1&after=2", "after", &malformed), "1");
  EXPECT_EQ(QueryParam("format", "format", &malformed), "");  // a key alone: empty value
  EXPECT_EQ(QueryParam("limit=3", "lim", &malformed), std::nullopt);
  EXPECT_EQ(QueryParam("", "limit", &malformed), std::nullopt);
  EXPECT_EQ(QueryParam("xlimit=1&&limit=2", "limit", &malformed), "2");
}

TEST(QueryParam, ReportsAMalformedValue) {
  bool malformed = false;
  EXPECT_EQ(QueryParam("limit=1&after=%zz", "after", &malformed), std::nullopt);
  EXPECT_TRUE(malformed);
  // Only the asked key's value is decoded.
  EXPECT_EQ(QueryParam("after=%zz&limit=1", "limit", &malformed), "1");
  EXPECT_FALSE(malformed);
}

}  // namespace
}  // namespace tierstream::server
