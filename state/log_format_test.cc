#include "state/log_format.h"

#include <gtest/gtest.h>

namespace tierstream::state {
namespace {

using ingest::Event;
using ingest::EventType;

TEST(LogFormat, RoundTripsEveryType) {
  std::string block;
  BeginLogBlock(&block);
  std::vector<Event> in;
  for (int t = 0; t <= static_cast<int>(EventType::kReferralCredit); ++t) {
    Event e;
    e.type = static_cast<EventType>(t);
    e.event_id = "ev";
    e.user_id = "用户";
    e.ts_ms = 1763971200000 + t;
    if (e.type == EventType::kOrder || e.type == EventType::kRefund) e.amount_fen = 12950;
    if (e.type == EventType::kOrder) e.community = true;
    if (e.type == EventType::kJoin || e.type == EventType::kReferralCredit) e.referrer_id = "u1";
    in.push_back(e);
    AppendEventRecord(e, &block);
  }
  LogBlockReader reader(block);
  Event out;
  size_t n = 0;
  while (reader.Next(&out)) {
    ASSERT_LT(n, in.size());
    EXPECT_EQ(out.type, in[n].type);
    EXPECT_EQ(out.ts_ms, in[n].ts_ms);
    EXPECT_EQ(out.amount_fen, in[n].amount_fen);
    EXPECT_EQ(out.community, in[n].community);
    EXPECT_EQ(out.user_id, in[n].user_id);
    EXPECT_EQ(out.referrer_id, in[n].referrer_id);
    ++n;
  }
  EXPECT_TRUE(reader.ok());
  EXPECT_EQ(n, in.size());
}

TEST(LogFormat, ReportsTruncatedBlocks) {
  std::string block;
  BeginLogBlock(&block);
  Event e;
  e.event_id = "e";
  e.user_id = "u";
  e.ts_ms = 1763971200000;
  AppendEventRecord(e, &block);
  block.pop_back();
  LogBlockReader reader(block);
  Event out;
  EXPECT_FALSE(reader.Next(&out));
  EXPECT_FALSE(reader.ok());
}

// Counters (duplicates, rejected lines) reset to 0 after a kill -9 because
// only accepted events were logged: a block now carries its group's counts.
TEST(LogFormat, BlockCarriesItsGroupsCounts) {
  std::string block;
  BeginLogBlock(&block);
  Event e;
  e.event_id = "e";
  e.user_id = "u";
  e.ts_ms = 1763971200000;
  AppendEventRecord(e, &block);
  SetLogBlockCounts(LogBlockCounts{3, 5, (1ull << 40) + 7}, &block);
  LogBlockReader reader(block);
  EXPECT_EQ(reader.counts().duplicates, 3u);
  EXPECT_EQ(reader.counts().rejected, 5u);
  EXPECT_EQ(reader.counts().beyond_horizon, (1ull << 40) + 7);
  Event out;
  ASSERT_TRUE(reader.Next(&out));
  EXPECT_EQ(out.event_id, "e");
  EXPECT_FALSE(reader.Next(&out));
  EXPECT_TRUE(reader.ok());
}

TEST(LogFormat, ReadsVersionOneBlocksWithoutCounts) {
  std::string block(1, '\1');  // what logs written before version 2 hold
  Event e;
  e.event_id = "old";
  e.user_id = "u";
  e.ts_ms = 1763971200000;
  AppendEventRecord(e, &block);
  LogBlockReader reader(block);
  EXPECT_EQ(reader.counts().duplicates, 0u);
  Event out;
  ASSERT_TRUE(reader.Next(&out));
  EXPECT_EQ(out.event_id, "old");
  EXPECT_TRUE(reader.ok());
}

// The Kafka mode logs where the shard stands in its input with each group,
// so that a restart resumes reading right after what its state holds.
TEST(LogFormat, BlockCarriesTheInputPositionWhenGivenOne) {
  Event e;
  e.event_id = "e";
  e.user_id = "u";
  e.ts_ms = 1763971200000;
  const InputPosition at{(1ull << 33) + 5, 17};
  std::string with;
  BeginLogBlock(&with, e.ts_ms, &at);
  AppendEventRecord(e, &with);
  LogBlockReader reader(with);
  ASSERT_TRUE(reader.has_position());
  EXPECT_EQ(reader.position(), at);
  EXPECT_EQ(reader.t_ms(), e.ts_ms);
  Event out;
  ASSERT_TRUE(reader.Next(&out));
  EXPECT_EQ(out.event_id, "e");
  EXPECT_TRUE(reader.ok());

  std::string without;
  BeginLogBlock(&without, e.ts_ms);
  AppendEventRecord(e, &without);
  LogBlockReader plain(without);
  EXPECT_FALSE(plain.has_position());
  ASSERT_TRUE(plain.Next(&out));
  EXPECT_TRUE(plain.ok());
}

TEST(LogFormat, ATruncatedPositionIsCorruption) {
  const InputPosition at{1ull << 40, 1ull << 40};
  std::string block;
  BeginLogBlock(&block, 1763971200000, &at);
  block.pop_back();  // the last byte of the repartition offset
  LogBlockReader reader(block);
  EXPECT_FALSE(reader.ok());
  // Nothing of it is reported (the events offset alone did decode).
  EXPECT_FALSE(reader.has_position());
  EXPECT_EQ(reader.position(), InputPosition{});
  EXPECT_TRUE(reader.marks().empty());
  Event out;
  EXPECT_FALSE(reader.Next(&out));
}

TEST(LogFormat, ReadsVersionThreeBlocksWithoutPosition) {
  std::string block;
  BeginLogBlock(&block, 1763971200000);
  block[0] = 3;
  block.erase(1 + 24 + 8, 1);  // version 3 had no position flag
  Event e;
  e.event_id = "v3";
  e.user_id = "u";
  e.ts_ms = 1763971200000;
  AppendEventRecord(e, &block);
  LogBlockReader reader(block);
  EXPECT_FALSE(reader.has_position());
  EXPECT_EQ(reader.t_ms(), 1763971200000);
  Event out;
  ASSERT_TRUE(reader.Next(&out));
  EXPECT_EQ(out.event_id, "v3");
  EXPECT_TRUE(reader.ok());
}

}  // namespace
}  // namespace tierstream::state
