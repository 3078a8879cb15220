#include "kafka/mock_cluster.h"

// rdkafka_mock.h requires rdkafka.h first.
// clang-format off
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
// clang-format on

#include <charconv>
#include <utility>

#if defined(__SANITIZE_THREAD__)
#include <pthread.h>
#include <threads.h>

#include <cstdint>
#endif

#if defined(__SANITIZE_THREAD__)
// librdkafka starts its threads with C11 thrd_create, which glibc runs
// without calling pthread_create, so ThreadSanitizer never learns of them and they
// crash in its allocator. In a TSan build this definition takes librdkafka's
// calls instead (the executable's symbol wins) and starts them through
// pthread_create, which TSan intercepts.
namespace {
struct ThrdStart {
  thrd_start_t fn;
  void* arg;
};
void* RunThrd(void* p) {
  const ThrdStart start = *static_cast<ThrdStart*>(p);
  delete static_cast<ThrdStart*>(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.fn(start.arg)));
}
}  // namespace
extern "C" int thrd_create(thrd_t* thr, thrd_start_t fn, void* arg) {
  auto* start = new ThrdStart{fn, arg};
  if (pthread_create(thr, nullptr, RunThrd, start) != 0) {
    delete start;
    return thrd_error;
  }
  return thrd_success;
}
// Joined and detached the same way, or TSan reports them leaked.
extern "C" int thrd_join(thrd_t thr, int* result) {
  void* r = nullptr;
  if (pthread_join(thr, &r) != 0) return thrd_error;
  if (result != nullptr) *result = static_cast<int>(reinterpret_cast<intptr_t>(r));
  return thrd_success;
}
extern "C" int thrd_detach(thrd_t thr) {
  return pthread_detach(thr) == 0 ? thrd_success : thrd_error;
}
#endif

namespace tierstream::kafka {

Result<TopicSpec> ParseTopicSpec(std::string_view spec) {
  TopicSpec topic;
  const size_t colon = spec.rfind(':');
  topic.name = std::string(spec.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string_view count = spec.substr(colon + 1);
    auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), topic.partitions);
    if (ec != std::errc() || end != count.data() + count.size() || topic.partitions < 1 ||
        topic.partitions > 10000) {
      return Status::InvalidArgument("topic \"" + std::string(spec) +
                                     "\": the partition count after ':' must be 1..10000");
    }
  }
  if (topic.name.empty() || topic.name.size() > 249 ||
      topic.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789._-") != std::string::npos) {
    return Status::InvalidArgument("topic \"" + std::string(spec) +
                                   "\": a name is 1..249 of [a-zA-Z0-9._-]");
  }
  return topic;
}

struct MockCluster::Handles {
  rd_kafka_t* rk = nullptr;  // the cluster's host handle (bookkeeping and logs only)
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ~Handles() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);  // before its handle
    if (rk != nullptr) rd_kafka_destroy(rk);
  }
};

MockCluster::MockCluster(std::unique_ptr<Handles> handles, std::string bootstraps)
    : handles_(std::move(handles)), bootstraps_(std::move(bootstraps)) {}
MockCluster::~MockCluster() = default;

Result<std::unique_ptr<MockCluster>> MockCluster::Start(int brokers,
                                                        const std::vector<TopicSpec>& topics) {
  if (brokers < 1 || brokers > 100) {
    return Status::InvalidArgument("brokers: 1..100, not " + std::to_string(brokers));
  }
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // Warnings and errors only: the host handle has no bootstrap.servers (it
  // is no client), which librdkafka notes at level 5.
  if (rd_kafka_conf_set(conf, "client.id", "tierstream-kafka-mock", err, sizeof err) !=
          RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return Status::Internal(std::string("kafka mock: ") + err);
  }
  auto handles = std::make_unique<Handles>();
  handles->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);  // takes conf
  if (handles->rk == nullptr) return Status::Internal(std::string("kafka mock: ") + err);
  handles->cluster = rd_kafka_mock_cluster_new(handles->rk, brokers);
  if (handles->cluster == nullptr) {
    return Status::Unavailable("kafka mock: could not start the cluster (no loopback ports?)");
  }
  for (const TopicSpec& t : topics) {
    // Replicated on every broker, up to 3, as a real cluster would.
    const rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(
        handles->cluster, t.name.c_str(), t.partitions, brokers < 3 ? brokers : 3);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::InvalidArgument("kafka mock: topic " + t.name + ": " + rd_kafka_err2str(e));
    }
  }
  std::string bootstraps = rd_kafka_mock_cluster_bootstraps(handles->cluster);
  return std::unique_ptr<MockCluster>(new MockCluster(std::move(handles), std::move(bootstraps)));
}

}  // namespace tierstream::kafka
