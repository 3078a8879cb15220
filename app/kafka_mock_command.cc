// `tierstream kafka-mock`: a Kafka cluster to develop and test the Kafka
// mode against (kafka/mock_cluster.h), until SIGTERM or SIGINT.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "app/commands.h"
#include "common/log.h"
#include "kafka/kafka_ingest.h"
#include "kafka/mock_cluster.h"

namespace tierstream::app {

int RunKafkaMock(const KafkaMockArgs& args) {
  std::vector<kafka::TopicSpec> topics;
  for (const std::string& spec : args.topics) {
    auto topic = kafka::ParseTopicSpec(spec);
    if (!topic.ok()) {
      Log(LogLevel::kError, "tierstream: --topic: %s",
          std::string(topic.status().message()).c_str());
      return 2;
    }
    topics.push_back(*topic);
  }
  if (!args.prefix.empty() && !topics.empty()) {
    kafka::KafkaOptions serve;
    serve.prefix = args.prefix;
    const int partitions = topics[0].partitions;
    for (const char* suffix : {"repartition", "changelog", "changes"}) {
      topics.push_back({kafka::InternalTopic(serve, suffix), partitions});
    }
    topics.push_back({kafka::InternalTopic(serve, "members"), 1});
  }
  // Blocked before librdkafka starts its threads, which inherit the mask: the
  // signals then wait for sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto cluster = kafka::MockCluster::Start(args.brokers, topics);
  if (!cluster.ok()) {
    Log(LogLevel::kError, "tierstream: %s", cluster.status().ToString().c_str());
    return cluster.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  // The first line of stdout, for scripts: B=$(tierstream kafka-mock ... | head -1)
  std::printf("%s\n", (*cluster)->bootstraps().c_str());
  std::fflush(stdout);
  std::string names;
  for (const kafka::TopicSpec& t : topics) {
    names += (names.empty() ? "" : ", ") + t.name + " (" + std::to_string(t.partitions) + ")";
  }
  Log(LogLevel::kInfo,
      "tierstream: kafka mock cluster of %d broker(s) on %s; topics: %s; until SIGTERM or "
      "Ctrl-C (everything is in memory)",
      args.brokers, (*cluster)->bootstraps().c_str(), names.empty() ? "none" : names.c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  Log(LogLevel::kInfo, "tierstream: kafka mock cluster stopped");
  return 0;
}

}  // namespace tierstream::app
