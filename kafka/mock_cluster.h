// MockCluster: librdkafka's mock Kafka cluster (rdkafka_mock.h), hosted in
// this process, for developing and testing the Kafka mode without a broker.
//
// Its brokers listen on loopback ports of their own and speak the Kafka
// protocol, so other processes (tierstream instances, kcat) use it as a
// cluster: consumer groups (range and cooperative-sticky), offset commits
// and the idempotent producer work. It keeps everything in memory, at most
// 5 MiB or 100,000 message sets per partition (older ones are dropped), and
// does not honour static membership, transactions, replication, broker
// failures, retention by time or compaction (README: "Kafka mode").
//
// Thread safety: the cluster runs on librdkafka's threads; the object is
// immutable once started.
#ifndef TIERSTREAM_KAFKA_MOCK_CLUSTER_H_
#define TIERSTREAM_KAFKA_MOCK_CLUSTER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tierstream::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 1;
};

// "NAME:PARTITIONS" (e.g. "events:12"); "NAME" alone has 1 partition.
Result<TopicSpec> ParseTopicSpec(std::string_view spec);

class MockCluster {
 public:
  // A cluster of `brokers` brokers with `topics` created (before any client
  // can connect: a topic a client asks for first is auto-created with 4
  // partitions).
  static Result<std::unique_ptr<MockCluster>> Start(int brokers,
                                                    const std::vector<TopicSpec>& topics);
  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  // "127.0.0.1:PORT,127.0.0.1:PORT,..." for bootstrap.servers.
  const std::string& bootstraps() const { return bootstraps_; }

 private:
  struct Handles;
  explicit MockCluster(std::unique_ptr<Handles> handles, std::string bootstraps);

  std::unique_ptr<Handles> handles_;
  std::string bootstraps_;
};

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_MOCK_CLUSTER_H_
