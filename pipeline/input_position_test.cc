// The Kafka mode's input positions: each shard logs where it stands in its
// input with every group, and recovers it with its state, so that a restart
// resumes reading right after what its state holds; a batch that would leave
// a gap is refused.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <vector>

#include "common/hash.h"
#include "ingest/decoder.h"
#include "pipeline/pipeline.h"
#include "tests/test_util.h"

namespace tierstream::pipeline {
namespace {

using state::InputPosition;
using tierstream::testing::TempDir;

constexpr uint32_t kShards = 4;

PipelineOptions KafkaOptions(const std::string& dir) {
  PipelineOptions o;
  o.data_dir = dir;
  o.shards = kShards;
  o.placement = Placement::kKafka;
  o.log_to_stderr = false;
  return o;
}

// A user placed on `shard` by Kafka's partitioner.
std::string UserOf(uint32_t shard, int n) {
  for (int i = 0;; ++i) {
    std::string id = "u" + std::to_string(n) + "-" + std::to_string(i);
    if (KafkaPartitionOf(id, kShards) == shard) return id;
  }
}

// `count` messages of one user of `shard`, ids from `first`; plus one line
// that is rejected when `with_reject`.
std::string Lines(uint32_t shard, int first, int count, bool with_reject = false) {
  std::string text;
  for (int i = first; i < first + count; ++i) {
    text += R"({"event_id":"e)" + std::to_string(shard) + "-" + std::to_string(i) +
            R"(","type":"message","user_id":")" + UserOf(shard, i % 3) +
            R"(","ts":"2026-11-24T09:15:00+08:00"})" + "\n";
  }
  if (with_reject)
    text += R"({"event_id":"bad","type":"message"})"
            "\n";
  return text;
}

// Submits `text` as a batch of `shard`'s partition covering start..end, and
// waits for its outcome.
BatchOutcome SubmitSpan(Pipeline& p, uint32_t shard, const std::string& text, InputPosition start,
                        InputPosition end, std::vector<state::ForwardMark> forwards = {}) {
  ingest::Decoder decoder;
  ingest::PaddedBuffer buf(text.size());
  buf.Append(text);
  auto batch = p.NewBatch();
  batch->input = InputSpan{shard, start, end, std::move(forwards)};
  {
    BatchBuilder builder(batch.get(), nullptr, "test");
    decoder.DecodeLines(buf.view(), 1, &batch->arena, &builder);
  }
  std::promise<BatchOutcome> done;
  auto outcome = done.get_future();
  p.Submit(std::move(batch), [&](BatchOutcome o) { done.set_value(std::move(o)); });
  return outcome.get();
}

// Takes every shard over, as the Kafka mode's consumer does on assignment
// (an instance answers and checkpoints for its own partitions only).
void ClaimEveryShard(Pipeline& p, uint64_t generation) {
  for (uint32_t s = 0; s < p.shards(); ++s) {
    ASSERT_TRUE(p.ClaimShard(
                     s, generation, [](const ShardMark&, state::Store*) { return false; },
                     [](std::vector<std::string>, const ShardMark&) { return Status::Ok(); })
                    .ok());
  }
}

uint64_t Accepted(Pipeline& p) {
  return static_cast<uint64_t>(Await(p, &Pipeline::GetKpis).kpis.events_accepted);
}

TEST(InputPosition, IsKeptWithTheStateThroughACleanCloseAndACrash) {
  TempDir dir;
  PipelineOptions o = KafkaOptions(dir.path());
  // No checkpoint by itself; the final one fails when `crash` is set, so
  // that reopening must replay the log (as after a kill -9).
  o.checkpoint_interval_ms = 1 << 30;
  std::atomic<bool> crash{false};
  o.test_fault_hook = [&](std::string_view where, uint32_t) {
    if (crash && where == "committer.checkpoint") throw std::runtime_error("crash");
  };
  std::vector<InputPosition> want(kShards);
  for (int round = 0; round < 2; ++round) {
    crash = false;
    auto p = Pipeline::Open(o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    for (uint32_t s = 0; s < kShards; ++s) {
      ASSERT_EQ((*p)->InputPositionOf(s), want[s]) << "shard " << s << " round " << round;
    }
    ClaimEveryShard(**p, round + 1);
    crash = round == 1;
    for (uint32_t s = 0; s < kShards; ++s) {
      // Input records, then forwarded ones, then input again.
      for (int step = 0; step < 3; ++step) {
        InputPosition next = want[s];
        (step == 1 ? next.repartition : next.events) += 5 + s;
        // What the batch took of other partitions' forwards moves its marks.
        std::vector<state::ForwardMark> forwards;
        if (step == 1) forwards.push_back({(s + 1) % kShards, uint64_t(round * 10 + s + 1)});
        BatchOutcome out =
            SubmitSpan(**p, s, Lines(s, round * 100 + step * 10, 4), want[s], next, forwards);
        ASSERT_TRUE(out.status.ok()) << out.status.ToString();
        EXPECT_EQ(out.accepted, 4u);
        want[s] = next;
        EXPECT_EQ((*p)->InputPositionOf(s), want[s]);
      }
    }
    EXPECT_EQ(Accepted(**p), uint64_t{(round + 1) * kShards * 12});
    Status closed = (*p)->Close();
    EXPECT_EQ(closed.ok(), !crash) << closed.ToString();
  }
  crash = false;
  auto p = Pipeline::Open(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_GT((*p)->recovery().log_events_replayed, 0u);  // the crashed round came from the log
  ClaimEveryShard(**p, 3);
  for (uint32_t s = 0; s < kShards; ++s) {
    EXPECT_EQ((*p)->InputPositionOf(s), want[s]);
    const std::vector<uint64_t> marks = (*p)->ForwardMarksOf(s);
    ASSERT_GT(marks.size(), (s + 1) % kShards) << "shard " << s;
    EXPECT_EQ(marks[(s + 1) % kShards], uint64_t{10 + s + 1}) << "shard " << s;
  }
  EXPECT_EQ(Accepted(**p), uint64_t{2 * kShards * 12});
}

// A batch of a partition that failed leaves its records unread by the
// shard: a later batch of that partition must not move the shard past them.
TEST(InputPosition, ABatchThatWouldLeaveAGapIsRefusedUntilTheReaderRewinds) {
  TempDir dir;
  auto p = Pipeline::Open(KafkaOptions(dir.path()));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ClaimEveryShard(**p, 1);
  ASSERT_TRUE(SubmitSpan(**p, 1, Lines(1, 0, 3), {0, 0}, {10, 0}).status.ok());
  BatchOutcome gap = SubmitSpan(**p, 1, Lines(1, 3, 3), {20, 0}, {30, 0});
  EXPECT_FALSE(gap.status.ok());
  EXPECT_EQ(gap.accepted, 0u);
  EXPECT_EQ((*p)->InputPositionOf(1), (InputPosition{10, 0}));
  EXPECT_EQ(Accepted(**p), 3u);
  // Rewound to the shard's position: records 10..19 again, then 20..29.
  ASSERT_TRUE(SubmitSpan(**p, 1, Lines(1, 10, 3), {10, 0}, {20, 0}).status.ok());
  BatchOutcome again = SubmitSpan(**p, 1, Lines(1, 3, 3), {20, 0}, {30, 0});
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.accepted, 3u);
  EXPECT_EQ((*p)->InputPositionOf(1), (InputPosition{30, 0}));
  // A batch re-read from before the position (a rewind overlapping what the
  // shard holds) is taken: its events are duplicates.
  BatchOutcome reread = SubmitSpan(**p, 1, Lines(1, 3, 3), {20, 0}, {30, 0});
  ASSERT_TRUE(reread.status.ok());
  EXPECT_EQ(reread.duplicates, 3u);
  EXPECT_EQ((*p)->InputPositionOf(1), (InputPosition{30, 0}));
  EXPECT_EQ(Accepted(**p), 9u);
  ASSERT_TRUE((*p)->Close().ok());
}

// Records that give no event (a rejected line, a duplicate) still move the
// shard on, durably, and their rejections are counted by that shard.
TEST(InputPosition, ABatchWithoutEventsStillMovesItsShardOn) {
  TempDir dir;
  PipelineOptions o = KafkaOptions(dir.path());
  {
    auto p = Pipeline::Open(o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ClaimEveryShard(**p, 1);
    BatchOutcome out = SubmitSpan(**p, 2, Lines(2, 0, 0, true), {0, 0}, {1, 0});
    ASSERT_TRUE(out.status.ok());
    EXPECT_EQ(out.rejected, 1u);
    EXPECT_EQ((*p)->InputPositionOf(2), (InputPosition{1, 0}));
    ASSERT_TRUE((*p)->Close().ok());
  }
  auto p = Pipeline::Open(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->InputPositionOf(2), (InputPosition{1, 0}));
  ClaimEveryShard(**p, 2);
  EXPECT_EQ(Await(**p, &Pipeline::GetKpis).kpis.events_rejected, 1);
}

}  // namespace
}  // namespace tierstream::pipeline
