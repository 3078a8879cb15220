#include "kafka/members.h"

#include <gtest/gtest.h>

namespace tierstream::kafka {
namespace {

TEST(Members, ARecordRoundTrips) {
  MemberInfo m;
  m.instance = "i1";
  m.address = "10.0.0.5:8080";
  m.partitions = {{0, 118}, {3, 7}};
  m.watermark = 1714003200000;
  m.at_ms = 1764900000000;
  const std::string json = EncodeMember(m);
  EXPECT_EQ(json,
            "{\"instance\":\"i1\",\"address\":\"10.0.0.5:8080\",\"partitions\":[[0,118],[3,7]],"
            "\"watermark\":1714003200000,\"at\":1764900000000}");
  MemberInfo back;
  ASSERT_TRUE(DecodeMember(json, &back));
  EXPECT_EQ(back.instance, "i1");
  EXPECT_EQ(back.address, m.address);
  EXPECT_EQ(back.partitions, m.partitions);
  EXPECT_EQ(back.watermark, m.watermark);
  EXPECT_EQ(back.at_ms, m.at_ms);
  EXPECT_FALSE(DecodeMember("{\"instance\":\"i1\"}", &back));
  EXPECT_FALSE(DecodeMember("not json", &back));
  EXPECT_FALSE(DecodeMember(
      "{\"instance\":\"i\",\"address\":\"a\",\"partitions\":[[1]],\"watermark\":0,\"at\":0}",
      &back));
}

}  // namespace
}  // namespace tierstream::kafka
