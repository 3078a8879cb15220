// tierstream: real-time member tiers and KPIs for social-commerce communities.
// Command-line wiring only; the subcommands live in commands.cc.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <thread>

#include "app/commands.h"
#include "tools/load.h"

int main(int argc, char** argv) {
  using namespace tierstream::app;
  namespace tools = tierstream::tools;
  CLI::App app{"tierstream: real-time member tiers and KPIs from community chat and order events"};
  app.require_subcommand(1);

  app.set_version_flag("--version", std::string("tierstream ") + TIERSTREAM_VERSION,
                       "Print the version and exit");

  // Options are grouped by who uses them, so that each command's --help
  // lists only what changes its behaviour.
  auto add_data_options = [](CLI::App* cmd, CommonArgs* common) {
    cmd->add_option("--data", common->data_dir, "Data directory (RocksDB, rejected.ndjson)")
        ->capture_default_str();
    cmd->add_option("--shards", common->shards,
                    "Shard workers (default: the data dir's count, else the number of cores)");
    cmd->add_option("--tz", common->tz,
                    "UTC offset of the day windows, e.g. +08:00 (default +08:00)");
    cmd->add_option("--config", common->config_file, "JSON config file (tiers, tz, dedup horizon)");
  };
  auto add_memory_options = [](CLI::App* cmd, CommonArgs* common) {
    cmd->add_option("--max-resident-users", common->max_resident_users,
                    "Users kept in memory; beyond, clean users are evicted and reloaded on demand")
        ->capture_default_str();
    cmd->add_option(
           "--warm-memory-mb", common->warm_memory_mb,
           "Memory for evicted users kept encoded (a reload is a decode, not a disk read); 0: none")
        ->capture_default_str();
    cmd->add_option("--dedup-memory-mb", common->dedup_memory_mb,
                    "Memory for event ids held exactly; beyond, they spill to disk in sorted runs")
        ->capture_default_str();
  };
  // Replay writes to the data dir's disk as well: it keeps the watermark.
  auto add_min_free_option = [](CLI::App* cmd, CommonArgs* common) {
    cmd->add_option("--min-free-mb", common->min_free_mb,
                    "Refuse ingest (503) while the data dir's disk has less free space")
        ->capture_default_str();
  };
  // Serve only: replay writes no log (it commits once, at the end) and has
  // no acknowledgements to keep short.
  auto add_serve_options = [](CLI::App* cmd, CommonArgs* common) {
    cmd->add_option("--checkpoint-interval-ms", common->checkpoint_interval_ms,
                    "A shard with changes checkpoints at least this often (the log after it is "
                    "what a restart replays)")
        ->capture_default_str();
    cmd->add_option("--snapshot-slice", common->snapshot_slice,
                    "Users a shard encodes into a checkpoint per slice between batches")
        ->capture_default_str();
    cmd->add_flag("--fsync", common->fsync,
                  "fsync the log before acknowledging (survives power loss, not only kill -9)");
  };

  ServeArgs serve;
  auto* serve_cmd = app.add_subcommand("serve", "Run the server: HTTP API and TCP NDJSON ingest");
  add_data_options(serve_cmd, &serve.common);
  add_memory_options(serve_cmd, &serve.common);
  add_min_free_option(serve_cmd, &serve.common);
  add_serve_options(serve_cmd, &serve.common);
  serve_cmd->add_option("--http", serve.server.http_address, "HTTP listen address HOST:PORT")
      ->capture_default_str();
  auto* tcp_option =
      serve_cmd
          ->add_option("--tcp", serve.server.tcp_address,
                       "TCP ingest listen address HOST:PORT (the Kafka mode: only when given)")
          ->capture_default_str();
  serve_cmd->add_option("--token-file", serve.token_file,
                        "File holding a bearer token required by every request but /healthz");
  serve_cmd
      ->add_option("--io-threads", serve.server.io_threads,
                   "Network threads (each serves its share of the connections)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-body-bytes", serve.server.max_body_bytes,
                   "Largest POST body accepted (413 beyond)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-inflight-body-mb", serve.max_inflight_body_mb,
                   "Memory for the POST bodies being received or decoded, all connections "
                   "together; beyond it a request waits, unread, up to --idle-timeout, then "
                   "gets 503 (a chunked one gets 503 at once). Must exceed --max-body-bytes")
      ->capture_default_str();
  serve_cmd
      ->add_option("--idle-timeout", serve.server.idle_timeout_seconds,
                   "Seconds of silence before a connection is closed (a TCP producer first gets "
                   "the summary of what was made durable)")
      ->capture_default_str();
  auto* max_connections =
      serve_cmd
          ->add_option("--max-connections", serve.server.max_connections,
                       "Concurrent connections accepted (with 16 more for health probes, "
                       "they must fit in the open-file limit beside RocksDB's 256 files: "
                       "the default is lowered to fit, a given value that does not is an error)")
          ->capture_default_str();
  serve_cmd
      ->add_option("--auth-timeout", serve.server.auth_timeout_seconds,
                   "With --token-file: seconds a connection has to authenticate (TCP: its "
                   "AUTH line; HTTP: a request with the token) before it is closed")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-unauthenticated", serve.server.max_unauthenticated,
                   "With --token-file: connections that may be unauthenticated at once; a new "
                   "one beyond evicts the oldest (default: a quarter of --max-connections)")
      ->check(CLI::Range(1, 1 << 20));
  serve_cmd
      ->add_option("--shutdown-grace", serve.server.shutdown_grace_seconds,
                   "On SIGTERM/SIGINT: seconds open connections get to receive the answer "
                   "for what they sent before they are closed")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();

  serve_cmd->add_option("--kafka", serve.kafka.bootstrap,
                        "Kafka mode: consume events from Kafka (bootstrap servers HOST:PORT,...) "
                        "as a member of a consumer group; shards = the topic's partitions");
  serve_cmd->add_option("--kafka-topic", serve.kafka.topic, "Kafka mode: the input topic")
      ->capture_default_str();
  serve_cmd->add_option("--kafka-group", serve.kafka.group, "Kafka mode: the consumer group")
      ->capture_default_str();
  serve_cmd
      ->add_option("--kafka-prefix", serve.kafka.prefix,
                   "Kafka mode: the internal topics' prefix (PREFIX-repartition, -changelog, "
                   "-changes, -members)")
      ->capture_default_str();
  serve_cmd->add_option("--instance-id", serve.kafka.instance_id,
                        "Kafka mode: static group membership (group.instance.id)");
  serve_cmd->add_option("--advertise", serve.advertise,
                        "Kafka mode: this instance's HTTP address as the other instances reach "
                        "it (default: the --http address; its host if that is 0.0.0.0)");
  serve_cmd->add_option("--kafka-config", serve.kafka_config,
                        "Kafka mode: a librdkafka property KEY=VALUE for every client "
                        "(repeatable; e.g. session.timeout.ms=6000, security.protocol=ssl)");

  ReplayArgs replay;
  auto* replay_cmd = app.add_subcommand("replay", "Bulk-load NDJSON files into a data dir");
  add_data_options(replay_cmd, &replay.common);
  add_memory_options(replay_cmd, &replay.common);
  add_min_free_option(replay_cmd, &replay.common);
  replay_cmd->add_option("files", replay.files, "NDJSON files ('-' = stdin)")->required();

  VerifyArgs verify;
  auto* verify_cmd = app.add_subcommand(
      "verify", "Recompute every profile and KPI from raw files and diff them with a data dir");
  add_data_options(verify_cmd, &verify.common);
  add_memory_options(verify_cmd, &verify.common);
  verify_cmd->add_option("files", verify.files, "Every NDJSON file fed to the data dir")
      ->required();
  verify_cmd->add_option("--max-listed", verify.max_listed, "Differences to print")
      ->capture_default_str();

  tools::GenOptions gen;
  auto* gen_cmd = app.add_subcommand("gen", "Write a realistic synthetic event stream to stdout");
  gen_cmd->add_option("--users", gen.users, "Members")->capture_default_str();
  gen_cmd->add_option("--days", gen.days, "Days of event time")->capture_default_str();
  gen_cmd->add_option("--seed", gen.seed, "Random seed")->capture_default_str();
  gen_cmd->add_option("--events", gen.events, "Lines to write (default: users x 10)");
  gen_cmd->add_option("--end-ms", gen.end_ms, "Event time of the end of the stream (ms)")
      ->capture_default_str();
  gen_cmd->add_option("--duplicate-rate", gen.duplicate_rate, "Share of repeated lines")
      ->capture_default_str();
  gen_cmd->add_option("--disorder-rate", gen.disorder_rate, "Share of out-of-order lines")
      ->capture_default_str();
  gen_cmd->add_option("--invalid-rate", gen.invalid_rate, "Share of invalid lines")
      ->capture_default_str();
  gen_cmd->add_flag("--midnight", gen.midnight,
                    "Scenario: --users members join on one day and leave tier new together at "
                    "a midnight crossed by --events messages");

  tools::LoadArgs load;
  auto* load_cmd = app.add_subcommand(
      "load",
      "Load-test a server: send files in chunks over several connections, time acks and queries");
  load_cmd->add_option("files", load.files, "NDJSON files")->required();
  load_cmd->add_option("--tcp", load.tcp_address,
                       "Ingest over TCP at HOST:PORT (one connection per chunk)");
  load_cmd->add_option("--http", load.http_address,
                       "HTTP address: ingest when --tcp is not given; queries");
  load_cmd->add_option("--token-file", load.token_file, "Bearer token file of the server");
  load_cmd->add_option("--connections", load.connections, "Concurrent connections")
      ->capture_default_str();
  load_cmd
      ->add_option("--chunk-events", load.chunk_events, "Lines per chunk (TCP connection or POST)")
      ->capture_default_str();
  load_cmd->add_option("--rate", load.rate, "Target events/s across connections (0: unpaced)")
      ->capture_default_str();
  load_cmd
      ->add_option("--query-rate", load.query_rate,
                   "GET /v1/users/{id} and /v1/kpis per second while loading")
      ->capture_default_str();
  load_cmd->add_flag("--ordered", load.ordered, "One connection, chunks in file order");
  load_cmd->add_flag("--follow-changes", load.follow_changes,
                     "Long-poll GET /v1/changes meanwhile; time changes from their event's ack");

  ClientArgs client;
  std::vector<std::string> send_files;
  auto* send_cmd = app.add_subcommand("send", "Stream NDJSON files to a server's TCP port");
  send_cmd->add_option("files", send_files, "NDJSON files ('-' = stdin)")->required();
  send_cmd->add_option("--tcp", client.tcp_address, "Server TCP address")->capture_default_str();
  send_cmd->add_option("--token-file", client.token_file, "Bearer token file of the server");
  send_cmd->footer(
      "Prints the server's summary line of each file on stdout; on a terminal, progress on stderr\n"
      "(lines durable, events/s, percent of the file, ETA).\n"
      "Exit status: 0 every line was taken (accepted or duplicate); 2 the server rejected some\n"
      "lines (listed in \"errors\"); 1 a file could not be read, the server could not be reached,\n"
      "or it refused ingest (the summary starts with \"error\"; lines after \"durable_lines\" "
      "were\n"
      "not taken; re-sending is safe, duplicates are recognised).");

  std::string user_id;
  auto* user_cmd = app.add_subcommand("user", "Print a member's profile and tier");
  user_cmd->add_option("id", user_id, "user_id")->required();
  user_cmd->add_option("--http", client.http_address, "Server HTTP address")->capture_default_str();
  user_cmd->add_option("--token-file", client.token_file, "Bearer token file of the server");

  auto* explain_cmd = app.add_subcommand(
      "explain",
      "Print why a member has her tier, when it changes next, and what she lacks for the others");
  explain_cmd->add_option("id", user_id, "user_id")->required();
  explain_cmd->add_option("--http", client.http_address, "Server HTTP address")
      ->capture_default_str();
  explain_cmd->add_option("--token-file", client.token_file, "Bearer token file of the server");

  auto* kpis_cmd = app.add_subcommand("kpis", "Print the community KPIs");
  kpis_cmd->add_option("--http", client.http_address, "Server HTTP address")->capture_default_str();
  kpis_cmd->add_option("--token-file", client.token_file, "Bearer token file of the server");

  ChangesArgs changes;
  auto* changes_cmd = app.add_subcommand(
      "changes", "Print the tier changes of a server as NDJSON (its change feed)");
  changes_cmd->add_option("--after", changes.after,
                          "Start after this cursor (a change's \"cursor\"), or \"end\" for only "
                          "what comes next; default: the oldest retained");
  changes_cmd->add_flag("--follow", changes.follow,
                        "Keep waiting for new changes (resumes by itself after a server restart)");
  changes_cmd->add_option("--to", changes.to, "Only changes to these tiers (comma-separated)");
  changes_cmd->add_option("--from", changes.from,
                          "Only changes from these tiers (comma-separated; null: a first tier)");
  changes_cmd->add_option("--http", client.http_address, "Server HTTP address")
      ->capture_default_str();
  changes_cmd->add_option("--token-file", client.token_file, "Bearer token file of the server");

  KafkaMockArgs kafka_mock;
  auto* kafka_mock_cmd = app.add_subcommand(
      "kafka-mock",
      "Run librdkafka's mock Kafka cluster on loopback (for development and tests; in memory); "
      "prints its bootstrap address on the first line of stdout");
  kafka_mock_cmd->add_option("--brokers", kafka_mock.brokers, "Brokers")->capture_default_str();
  kafka_mock_cmd->add_option("--topic", kafka_mock.topics,
                             "A topic to create, NAME:PARTITIONS (e.g. events:12); repeatable");
  kafka_mock_cmd
      ->add_option("--tierstream-prefix", kafka_mock.prefix,
                   "Also create tierstream's internal topics PREFIX-repartition and "
                   "PREFIX-changelog, partitioned as "
                   "the first --topic (the mock cannot create topics on request); \"\": none")
      ->capture_default_str();

  // CLI11 would answer a misspelt command with "A subcommand is required":
  // name it and list the commands instead.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string name = argv[1];
    std::string names;
    bool known = false;
    for (const CLI::App* cmd : app.get_subcommands([](const CLI::App*) { return true; })) {
      known = known || cmd->get_name() == name;
      names += (names.empty() ? "" : ", ") + cmd->get_name();
    }
    if (!known) {
      std::fprintf(stderr,
                   "tierstream: unknown command '%s'; the commands are: %s\n"
                   "Run with --help for more information.\n",
                   name.c_str(), names.c_str());
      return 2;
    }
  }

  CLI11_PARSE(app, argc, argv);

  if (*serve_cmd) {
    serve.max_connections_given = max_connections->count() > 0;
    serve.tcp_given = tcp_option->count() > 0;
    return RunServe(serve);
  }
  if (*replay_cmd) return RunReplay(replay);
  if (*verify_cmd) return RunVerify(verify);
  if (*gen_cmd) return RunGen(gen);
  if (*send_cmd) return RunSend(send_files, client);
  if (*user_cmd) return RunUser(user_id, client);
  if (*explain_cmd) return RunExplain(user_id, client);
  if (*kpis_cmd) return RunKpis(client);
  if (*changes_cmd) return RunChanges(changes, client);
  if (*load_cmd) return tools::RunLoad(load);
  if (*kafka_mock_cmd) return RunKafkaMock(kafka_mock);
  return 2;
}
