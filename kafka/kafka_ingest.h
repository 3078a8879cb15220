// KafkaIngest: the Kafka mode's input. It consumes the input topic as a
// member of a consumer group and feeds the pipeline, whose shards are the
// topic's partitions (Placement::kKafka): shard p holds the users that
// Kafka's partitioner (murmur2 of user_id) puts on partition p.
//
// Each partition's records are decoded in batches. An event whose user (or
// a join's referral credit, whose referrer) belongs to another partition is
// forwarded to that partition of the repartition topic PREFIX-repartition,
// as a log block (state/log_format.h), and each batch is submitted only
// after its forwards are acknowledged; a shard reads its partition of both
// topics. A batch carries the span of input it covers (pipeline InputSpan):
// the shard logs its position with the batch's events, so that its state and
// its input position are durable together, and a restart (or a partition
// assigned again) resumes reading exactly where the state stands. Re-read
// records are harmless: their event ids are duplicates. A batch that fails
// (the store refused it) makes its partition rewind to the shard's position.
//
// Offsets are committed to the group as well when a partition is handed
// over, for lag tools; the shard's own position is the truth (/healthz and
// /metrics show the live lag).
//
// Thread safety: Start/Stop from one thread; Stats from any. Consuming runs
// on a thread of its own.
#ifndef TIERSTREAM_KAFKA_KAFKA_INGEST_H_
#define TIERSTREAM_KAFKA_KAFKA_INGEST_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "ingest/reject_log.h"
#include "kafka/options.h"
#include "pipeline/input_stats.h"
#include "pipeline/pipeline.h"

namespace tierstream::kafka {

// Stopping: from now on every Kafka client's last flush (the changelog, the
// change topic, the members' record, produced events) waits at most until
// one deadline they share, so that a cluster that cannot be reached delays
// stopping by `budget` in all, not by each client's timeout in turn. What
// is not acknowledged by then is given up: the local state holds it, and
// the changelog and the change topic are caught up by the partition's next
// owner (a record of a checkpoint never published is published by it).
void StartShutdown(std::chrono::milliseconds budget);

class KafkaIngest {
 public:
  // Joins the group and consumes until Stop(). `on_fatal` is called (on the
  // consuming thread) if the Kafka clients fail for good; serve then stops.
  // `pipeline` must have Placement::kKafka and the topic's partition count,
  // and outlive the ingest.
  static Result<std::unique_ptr<KafkaIngest>> Start(
      const KafkaOptions& options, pipeline::Pipeline* pipeline,
      std::function<void(const Status& failure)> on_fatal);
  ~KafkaIngest();  // Stop()
  KafkaIngest(const KafkaIngest&) = delete;
  KafkaIngest& operator=(const KafkaIngest&) = delete;

  // Leaves the group (its partitions go to the other members at once) and
  // waits for the batches in flight. Idempotent.
  void Stop();
  // Its figures for /healthz and /metrics (lag: as of the last fetch).
  pipeline::InputStats Stats() const;
  // The partitions this instance owns, with their owner generations
  // (kafka/members.h). Thread-safe.
  std::vector<std::pair<uint32_t, uint64_t>> OwnedPartitions() const;
  // For PipelineOptions::on_checkpoint: the shard's committed checkpoint
  // goes to the changelog if this member owns its partition. Thread-safe.
  void OnCheckpoint(const pipeline::CheckpointImage& image);

 private:
  struct Impl;
  explicit KafkaIngest(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_KAFKA_INGEST_H_
