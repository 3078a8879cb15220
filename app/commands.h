// The `tierstream` subcommands. main.cc parses the command line into these
// argument structs; each Run* returns the process exit code.
#ifndef TIERSTREAM_APP_COMMANDS_H_
#define TIERSTREAM_APP_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "kafka/kafka_ingest.h"
#include "server/server.h"
#include "tools/gen.h"

namespace tierstream::app {

using server::ServerOptions;

struct CommonArgs {
  std::string data_dir = "./data";
  uint32_t shards = 0;
  std::string tz;           // overrides the config file's
  std::string config_file;  // optional JSON config
  bool fsync = false;
  uint64_t max_resident_users = 4'000'000;
  uint64_t min_free_mb = 256;
  uint64_t dedup_memory_mb = 256;
  uint64_t warm_memory_mb = 512;
  uint64_t snapshot_slice = 4096;
  uint32_t checkpoint_interval_ms = 2000;
};

struct ServeArgs {
  CommonArgs common;
  ServerOptions server;
  std::string token_file;
  uint64_t max_inflight_body_mb = ServerOptions{}.max_inflight_body_bytes >> 20;
  // --max-connections was given: it must fit in the open-file limit, or
  // serve refuses to start (a default is lowered to fit; app/fd_budget.h).
  bool max_connections_given = false;
  // --tcp was given: the Kafka mode listens for TCP ingest only then (each
  // of several instances on one host needs a port of its own).
  bool tcp_given = false;
  // The Kafka mode (--kafka BOOTSTRAP): events are consumed from a topic
  // instead of taken over HTTP and TCP. Off when bootstrap is empty.
  kafka::KafkaOptions kafka;
  std::vector<std::string> kafka_config;  // --kafka-config KEY=VALUE
  std::string advertise;                  // --advertise HOST:PORT
};

struct ClientArgs {
  std::string http_address = "127.0.0.1:8080";
  std::string tcp_address = "127.0.0.1:9090";
  std::string token_file;
};

struct ReplayArgs {
  CommonArgs common;
  std::vector<std::string> files;  // "-" is stdin
};

struct VerifyArgs {
  CommonArgs common;
  std::vector<std::string> files;  // every event ever fed to the data dir
  size_t max_listed = 20;          // differences printed
};

int RunServe(const ServeArgs& args);
// Recomputes every profile and KPI from the raw files with the batch
// evaluator and diffs them against the data dir. Exit 1 on any difference.
int RunVerify(const VerifyArgs& args);
int RunReplay(const ReplayArgs& args);
int RunGen(const tools::GenOptions& options);
// Exit codes of `send` (also in its --help and the README).
inline constexpr int kSendOk = 0;            // every line taken (accepted or duplicate)
inline constexpr int kSendFailed = 1;        // unreadable file, no connection, or ingest refused
inline constexpr int kSendSomeRejected = 2;  // the server rejected some lines (see "errors")
// Streams each file over its own connection and prints the server's summary
// line on stdout; on a terminal, progress from the server's acks on stderr.
int RunSend(const std::vector<std::string>& files, const ClientArgs& client);
int RunUser(const std::string& user_id, const ClientArgs& client);
// Prints GET /v1/users/{id}/explain; exit 1 unless the server answers 200.
int RunExplain(const std::string& user_id, const ClientArgs& client);
int RunKpis(const ClientArgs& client);

struct ChangesArgs {
  std::string after;  // "" (from the oldest retained), a cursor, or "end"
  bool follow = false;
  std::string to;    // comma-separated tiers
  std::string from;  // comma-separated tiers, "null" for a first tier
};
// The change feed as NDJSON on stdout (app/changes_command.cc).
int RunChanges(const ChangesArgs& args, const ClientArgs& client);

struct KafkaMockArgs {
  int brokers = 3;
  std::vector<std::string> topics;  // "NAME:PARTITIONS"
  // The internal topics of `serve --kafka --kafka-prefix PREFIX` are
  // created too, partitioned as the first topic ("": none).
  std::string prefix = "tierstream";
};
// A mock Kafka cluster until SIGTERM (app/kafka_mock_command.cc).
int RunKafkaMock(const KafkaMockArgs& args);

}  // namespace tierstream::app

#endif  // TIERSTREAM_APP_COMMANDS_H_
