// The Kafka mode's options (serve --kafka ...), and the topics they name:
// the input topic and the internal ones, PREFIX-repartition,
// PREFIX-changelog and PREFIX-changes (one partition per input partition)
// and PREFIX-members (one). Light: no librdkafka header.
#ifndef TIERSTREAM_KAFKA_OPTIONS_H_
#define TIERSTREAM_KAFKA_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tierstream::kafka {

struct KafkaOptions {
  std::string bootstrap;             // bootstrap.servers (--kafka)
  std::string topic = "events";      // the input topic (--kafka-topic)
  std::string group = "tierstream";  // the consumer group (--kafka-group)
  // Names the internal topics: PREFIX-repartition (--kafka-prefix).
  std::string prefix = "tierstream";
  // group.instance.id: static membership, so that a restart on the same
  // disk gets its partitions back without a rebalance (--instance-id).
  std::string instance_id;
  // librdkafka properties for every client, after tierstream's own
  // (--kafka-config KEY=VALUE: security.protocol, session.timeout.ms, ...).
  std::vector<std::pair<std::string, std::string>> client_config;
  // A partition's records are submitted as one batch once they hold this
  // many records or bytes, or when no more are waiting.
  size_t batch_records = 8192;
  size_t batch_bytes = 4u << 20;
};

// The name of an internal topic: "PREFIX-repartition", ...
std::string InternalTopic(const KafkaOptions& options, const char* suffix);
// This instance's name in the cluster: --instance-id, else "HOST:PID".
std::string InstanceName(const KafkaOptions& options);

// Asks the cluster for the input topic's partition count (the number of
// shards), and checks that the internal topics exist: PREFIX-repartition,
// PREFIX-changelog and PREFIX-changes with as many partitions, and
// PREFIX-members. A missing one is created (CreateTopics), and where that
// is not possible the error says which topic to create.
// The input topic's partition count, after checking that every internal
// topic has as many (creating those that are missing): a clear error names
// the topic otherwise.
Result<uint32_t> DiscoverPartitions(const KafkaOptions& options, int timeout_ms = 10'000);

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_OPTIONS_H_
