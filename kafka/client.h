// What the Kafka mode's clients share: configuration (tierstream's settings,
// then the user's --kafka-config), creation, partition lists, and producing
// one record. Internal to kafka/: the only header that names librdkafka's
// types, included by kafka/*.cc alone.
//
// Thread safety: plain functions; librdkafka's handles are thread-safe.
#ifndef TIERSTREAM_KAFKA_CLIENT_H_
#define TIERSTREAM_KAFKA_CLIENT_H_

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "kafka/options.h"

namespace tierstream::kafka {

// A client configuration: bootstrap.servers, then `own`, then the user's
// properties (options.client_config); librdkafka's log goes to ours.
Result<rd_kafka_conf_t*> NewConf(const KafkaOptions& options,
                                 std::initializer_list<std::pair<const char*, std::string>> own);
// Creates a client; takes `conf` (destroyed on failure too).
Result<rd_kafka_t*> NewClient(rd_kafka_type_t type, rd_kafka_conf_t* conf);

// Owns an rd_kafka_topic_partition_list_t.
struct PartitionList {
  rd_kafka_topic_partition_list_t* list;
  explicit PartitionList(int n = 0) : list(rd_kafka_topic_partition_list_new(n)) {}
  ~PartitionList() { rd_kafka_topic_partition_list_destroy(list); }
  PartitionList(const PartitionList&) = delete;
  PartitionList& operator=(const PartitionList&) = delete;
  void Add(const std::string& topic, uint32_t partition, int64_t offset) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), static_cast<int32_t>(partition))
        ->offset = offset;
  }
};

// Logs and frees an error of librdkafka's rd_kafka_error_t kind.
void LogError(rd_kafka_error_t* e, const char* what);

// Produces one record (value copied) to `partition` of `topic`, or by the
// producer's partitioner from `key` if partition is RD_KAFKA_PARTITION_UA.
// `opaque` reaches the delivery report. While the producer's queue is full
// it serves delivery reports and retries, unless `stopping` is set.
Status Produce(rd_kafka_t* producer, const std::string& topic, int32_t partition,
               std::string_view key, std::string_view value, void* opaque,
               const std::atomic<bool>& stopping);

// rd_kafka_flush for at most `timeout_ms`, and once StartShutdown() was
// called (kafka/kafka_ingest.h) no later than its deadline.
rd_kafka_resp_err_t FlushForShutdown(rd_kafka_t* producer, int timeout_ms);
// now + `own`, or StartShutdown()'s deadline if that is sooner.
std::chrono::steady_clock::time_point GiveUpAt(std::chrono::milliseconds own);
// Flushes `producer` (FlushForShutdown), then purges what is still
// unacknowledged — its delivery reports are served, with
// RD_KAFKA_RESP_ERR__PURGE_QUEUE or _INFLIGHT, so that every report's
// opaque is released — and destroys it.
void CloseProducer(rd_kafka_t* producer, int flush_timeout_ms);

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_CLIENT_H_
