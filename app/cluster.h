// Cluster: what serve runs in the Kafka mode so that every instance answers
// every query — the membership (kafka/members.h) and a small pool of
// threads that forwards queries to other instances over HTTP, with a
// deadline (a stopped peer costs a query 3 s, not a thread forever) and a
// bounded queue (beyond it a forward fails at once: 503).
//
// Thread safety: Hooks() are thread-safe from construction; Start and Stop
// from one thread.
#ifndef TIERSTREAM_APP_CLUSTER_H_
#define TIERSTREAM_APP_CLUSTER_H_

#include <memory>
#include <string>

#include "common/status.h"
#include "kafka/kafka_ingest.h"
#include "server/http_api.h"

namespace tierstream::app {

class Cluster {
 public:
  // `token`: the bearer token peers require (empty: none).
  explicit Cluster(std::string token);
  ~Cluster();  // Stop()
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // For the API; until Start they know no other instance.
  server::ClusterHooks Hooks();
  // Announces this instance at `address` and learns the others.
  Status Start(const kafka::KafkaOptions& options, const std::string& address,
               kafka::KafkaIngest* ingest, pipeline::Pipeline* pipeline);
  void Stop();

  // The HTTP address others reach `http` at: `advertise` if set, else
  // `http` with its port, its host replaced by this host's name when it is
  // a wildcard (0.0.0.0, [::]).
  static std::string Advertised(const std::string& advertise, const std::string& http,
                                uint16_t port);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tierstream::app

#endif  // TIERSTREAM_APP_CLUSTER_H_
