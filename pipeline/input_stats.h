// InputStats: the figures of an input the pipeline consumes from outside
// (the Kafka mode's consumer, kafka/kafka_ingest.h), as /healthz shows them
// and /metrics exposes them. A plain value, so that the server renders it
// without depending on the input's library.
#ifndef TIERSTREAM_PIPELINE_INPUT_STATS_H_
#define TIERSTREAM_PIPELINE_INPUT_STATS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tierstream::pipeline {

struct InputPartitionStats {
  uint32_t partition = 0;
  uint64_t position = 0;  // the next offset its shard reads (what its state covers)
  int64_t end = -1;       // the partition's end (high watermark) as last fetched; -1: unknown
  int64_t lag = -1;       // end - position; -1: unknown
};

struct InputStats {
  std::string topic;
  std::string group;
  std::vector<InputPartitionStats> assigned;  // the partitions this instance consumes
  uint64_t records = 0;                       // input records read
  uint64_t forwarded_in = 0;                  // forwards read (other partitions' events for ours)
  uint64_t forwarded_out = 0;      // events (and referral credits) forwarded to other partitions
  uint64_t batches = 0;            // batches submitted
  uint64_t rewinds = 0;            // partitions read again after a failed batch
  uint64_t rebalances = 0;         // assignments and revocations
  uint64_t restores = 0;           // partitions restored from the changelog
  uint64_t restored_bytes = 0;     // shard-image bytes they applied
  double restore_seconds = 0;      // time they took
  uint64_t changes_published = 0;  // tier changes produced to the change topic (again ones too)
  uint64_t changes_fenced = 0;     // checkpoints whose changes a newer owner's claim fenced
};

// Where the server gets them (thread-safe; empty: no such input).
using InputStatsFn = std::function<InputStats()>;

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_INPUT_STATS_H_
