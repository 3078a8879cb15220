// The Kafka mode's topics (kafka/options.h): names, and the check that
// every internal topic exists with as many partitions as the input topic.
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "kafka/client.h"
#include "kafka/options.h"

namespace tierstream::kafka {

std::string InternalTopic(const KafkaOptions& options, const char* suffix) {
  return options.prefix + "-" + suffix;
}

std::string InstanceName(const KafkaOptions& options) {
  if (!options.instance_id.empty()) return options.instance_id;
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

namespace {

// Checks that internal topic PREFIX-suffix has n partitions (unless not
// `exact`), creating it with n if it is missing.
template <typename PartitionsOf>
Status CheckInternalTopic(rd_kafka_t* rk, const KafkaOptions& options, const char* suffix,
                          int32_t n, int timeout_ms, const PartitionsOf& partitions_of,
                          bool exact = true) {
  const std::string name = InternalTopic(options, suffix);
  int32_t m = -1;
  Status s = partitions_of(name, &m);
  if (!s.ok()) return s;
  if (m < 0) {
    // Missing: create it.
    char err[512];
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(name.c_str(), n, -1, err, sizeof err);
    if (topic == nullptr) return Status::InvalidArgument(std::string("kafka: ") + err);
    // The changelog is read from its start by every takeover: nothing of it
    // may expire. The members' records are keyed by instance: the newest
    // of each is all that matters.
    if (std::strcmp(suffix, "changelog") == 0) {
      rd_kafka_NewTopic_set_config(topic, "retention.ms", "-1");
      rd_kafka_NewTopic_set_config(topic, "retention.bytes", "-1");
    } else if (std::strcmp(suffix, "members") == 0) {
      rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
    }
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &topic, 1, nullptr, queue);
    rd_kafka_NewTopic_destroy(topic);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, timeout_ms);
    std::string failure = ev == nullptr ? "no answer" : "";
    if (ev != nullptr) {
      if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        failure = rd_kafka_event_error_string(ev);
      } else if (const rd_kafka_CreateTopics_result_t* res =
                     rd_kafka_event_CreateTopics_result(ev)) {
        size_t cnt = 0;
        const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt; ++i) {
          if (rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            failure = rd_kafka_topic_result_error_string(results[i]);
          }
        }
      }
      rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(queue);
    if (!failure.empty()) {
      return Status::FailedPrecondition(
          "kafka: the topic " + name + " is missing and " + "could not be created (" + failure +
          "); create it with " + std::to_string(n) + " partitions, as " + options.topic + " has");
    }
    Log(LogLevel::kInfo, "tierstream: kafka: created %s with %d partitions", name.c_str(), n);
    m = n;
  }
  if (exact && m != n) {
    return Status::FailedPrecondition("kafka: " + name + " has " + std::to_string(m) +
                                      " partitions and " + options.topic + " has " +
                                      std::to_string(n) + "; they must have as many");
  }
  return Status::Ok();
}

}  // namespace

Result<uint32_t> DiscoverPartitions(const KafkaOptions& options, int timeout_ms) {
  auto conf = NewConf(options, {});
  if (!conf.ok()) return conf.status();
  auto client = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!client.ok()) return client.status();
  rd_kafka_t* rk = *client;
  struct Destroy {
    rd_kafka_t* rk;
    ~Destroy() { rd_kafka_destroy(rk); }
  } destroy{rk};
  // All topics: asking for one by name would auto-create it where a
  // cluster allows that (with its default partition count).
  auto partitions_of = [&](const std::string& topic, int32_t* count) -> Status {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Unavailable("kafka: cannot read the cluster's metadata from " +
                                 options.bootstrap + ": " + rd_kafka_err2str(err));
    }
    *count = -1;
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (topic == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        *count = md->topics[i].partition_cnt;
      }
    }
    rd_kafka_metadata_destroy(md);
    return Status::Ok();
  };
  int32_t n = -1;
  Status s = partitions_of(options.topic, &n);
  if (!s.ok()) return s;
  if (n <= 0) {
    return Status::FailedPrecondition("kafka: the input topic " + options.topic +
                                      " does not exist on " + options.bootstrap);
  }
  if (n > 1024) {
    return Status::FailedPrecondition("kafka: the input topic " + options.topic + " has " +
                                      std::to_string(n) + " partitions; at most 1024 are served");
  }
  for (const char* suffix : {"repartition", "changelog", "changes"}) {
    Status checked = CheckInternalTopic(rk, options, suffix, n, timeout_ms, partitions_of);
    if (!checked.ok()) return checked;
  }
  // The members' records (kafka/members.h) go to its partition 0.
  Status checked =
      CheckInternalTopic(rk, options, "members", 1, timeout_ms, partitions_of, false /*exact*/);
  if (!checked.ok()) return checked;
  return static_cast<uint32_t>(n);
}

}  // namespace tierstream::kafka
