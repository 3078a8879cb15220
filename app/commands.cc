// The subcommands of the tierstream binary (serve, replay, verify, gen, send,
// user, kpis), each wiring the libraries together.
#include "app/commands.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "app/cluster.h"
#include "app/fd_budget.h"
#include "common/fd_limit.h"
#include "common/log.h"
#include "common/time.h"
#include "ingest/decoder.h"
#include "pipeline/file_source.h"
#include "pipeline/pipeline.h"
#include "server/server.h"
#include "server/webhooks.h"
#include "server/wire_json.h"
#include "state/store.h"
#include "tools/client.h"
#include "tools/progress.h"
#include "verify/batch_eval.h"
#include "verify/diff.h"

namespace tierstream::app {

using server::kMaxProbeConnections;
using server::Server;

namespace {

using Clock = std::chrono::steady_clock;

Result<pipeline::PipelineOptions> MakePipelineOptions(const CommonArgs& args) {
  pipeline::PipelineOptions options;
  options.data_dir = args.data_dir;
  options.shards = args.shards;
  options.fsync = args.fsync;
  options.max_resident_users = args.max_resident_users;
  options.min_free_bytes = args.min_free_mb << 20;
  options.dedup_memory_bytes = args.dedup_memory_mb << 20;
  options.warm_memory_bytes = args.warm_memory_mb << 20;
  options.snapshot_slice = std::max<uint64_t>(args.snapshot_slice, 1);
  options.checkpoint_interval_ms =
      static_cast<int>(std::max<uint32_t>(args.checkpoint_interval_ms, 1));
  if (!args.config_file.empty()) {
    ASSIGN_OR_RETURN(options.config, state::LoadConfigFile(args.config_file));
  }
  if (!args.tz.empty()) {
    auto offset = ParseUtcOffset(args.tz);
    if (!offset) return Status::InvalidArgument("--tz: expected an offset like +08:00");
    options.config.utc_offset_ms = *offset;
  }
  return options;
}

long PeakRssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

// Checks that every file can be opened before any is read: a typo in the
// last name must not fail a replay after the first files are loaded.
bool AllReadable(const std::vector<std::string>& files) {
  for (const std::string& file : files) {
    if (file == "-") continue;
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) {
      Log(LogLevel::kError, "tierstream: cannot read %s: %s", file.c_str(), std::strerror(errno));
      return false;
    }
    std::fclose(f);
  }
  return true;
}

// The sum of the sizes of `files` (what progress is measured against); 0
// when one of them is stdin or not a regular file (then there is no
// percentage to show).
uint64_t TotalBytes(const std::vector<std::string>& files) {
  uint64_t total = 0;
  for (const std::string& file : files) {
    std::error_code ec;
    if (file == "-" || !std::filesystem::is_regular_file(file, ec)) return 0;
    total += std::filesystem::file_size(file, ec);
  }
  return total;
}

// True when another process holds the lock of the data dir's store (RocksDB
// takes a POSIX record lock on DIR/db/LOCK): a running server, most likely.
bool DataDirInUse(const std::string& data_dir) {
  const int fd = ::open((data_dir + "/db/LOCK").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  const bool held = ::fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
  ::close(fd);
  return held;
}

// Opens the pipeline of a command; on failure explains it (in plain words
// when the data dir is another process's) and returns null.
std::unique_ptr<pipeline::Pipeline> OpenPipeline(const pipeline::PipelineOptions& options) {
  auto opened = pipeline::Pipeline::Open(options);
  if (opened.ok()) return std::move(opened).value();
  if (DataDirInUse(options.data_dir)) {
    Log(LogLevel::kError,
        "tierstream: data dir %s is in use by another tierstream process (a running server?); "
        "stop it first",
        options.data_dir.c_str());
  } else {
    Log(LogLevel::kError, "tierstream: cannot open %s: %s", options.data_dir.c_str(),
        opened.status().ToString().c_str());
  }
  return nullptr;
}

}  // namespace

int RunServe(const ServeArgs& args) {
  auto options = MakePipelineOptions(args.common);
  if (!options.ok()) {
    Log(LogLevel::kError, "tierstream: %s", options.status().ToString().c_str());
    return 2;
  }
  ServerOptions server_options = args.server;
  server_options.max_inflight_body_bytes = args.max_inflight_body_mb << 20;
  kafka::KafkaOptions kafka_options = args.kafka;
  const bool kafka_mode = !kafka_options.bootstrap.empty();
  // The Kafka mode's ingest, once it runs: its changelog takes the shards'
  // checkpoints, and /healthz and /metrics show its figures.
  std::atomic<kafka::KafkaIngest*> changelog{nullptr};
  if (kafka_mode) {
    for (const std::string& property : args.kafka_config) {
      const size_t eq = property.find('=');
      if (eq == std::string::npos || eq == 0) {
        Log(LogLevel::kError, "tierstream: --kafka-config %s: expected KEY=VALUE",
            property.c_str());
        return 2;
      }
      kafka_options.client_config.emplace_back(property.substr(0, eq), property.substr(eq + 1));
    }
    // The shards are the input topic's partitions.
    auto partitions = kafka::DiscoverPartitions(kafka_options);
    if (!partitions.ok()) {
      Log(LogLevel::kError, "tierstream: %s", partitions.status().ToString().c_str());
      return partitions.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    if (args.common.shards != 0 && args.common.shards != *partitions) {
      Log(LogLevel::kError,
          "tierstream: --shards %u: in the Kafka mode the shards are the partitions of %s (%u)",
          args.common.shards, kafka_options.topic.c_str(), *partitions);
      return 2;
    }
    options->shards = *partitions;
    options->placement = Placement::kKafka;
    // POST /v1/events and TCP ingest produce into the topic (app/cluster.h).
    if (!args.tcp_given) server_options.tcp_address.clear();
    server_options.events_elsewhere = "this server consumes its events from the Kafka topic " +
                                      kafka_options.topic + ": produce them there";
    server_options.input_stats = [&changelog, topic = kafka_options.topic,
                                  group = kafka_options.group] {
      kafka::KafkaIngest* ingest = changelog.load(std::memory_order_acquire);
      if (ingest != nullptr) return ingest->Stats();
      pipeline::InputStats none;  // not consuming yet
      none.topic = topic;
      none.group = group;
      return none;
    };
  }
  if (!args.token_file.empty()) {
    auto token = tools::ReadTokenFile(args.token_file);
    if (!token.ok()) {
      Log(LogLevel::kError, "tierstream: %s", token.status().ToString().c_str());
      return 2;
    }
    server_options.token = *token;
  }
  for (const std::string* address : {&server_options.http_address, &server_options.tcp_address}) {
    if (!address->empty() && address->rfind("127.", 0) != 0 && address->rfind("[::1]", 0) != 0 &&
        address->rfind("localhost", 0) != 0 && server_options.token.empty()) {
      Log(LogLevel::kWarning,
          "tierstream: WARNING: %s is reachable from other machines and no --token-file guards it",
          address->c_str());
    }
  }
  // Secrets are read now: a webhook that cannot sign fails the start.
  std::unique_ptr<server::Webhooks> webhooks;
  if (!options->config.webhooks.empty()) {
    auto created = server::Webhooks::Create(options->config.webhooks);
    if (!created.ok()) {
      Log(LogLevel::kError, "tierstream: %s", created.status().ToString().c_str());
      return 2;
    }
    webhooks = std::move(created).value();
    server_options.webhook_stats = [hooks = webhooks.get()] { return hooks->Stats(); };
  }
  // Connections and RocksDB's files share the open-file limit: a burst of
  // connections must never leave RocksDB without a descriptor for its next
  // file (it then refuses every write until the database is reopened).
  const FdLimit fd_limit = RaiseFdLimit();
  FdBudgetInput fd_input;
  fd_input.limit = fd_limit.soft;
  fd_input.hard_limit = fd_limit.hard;
  const uint64_t open_now = OpenFdCount();
  fd_input.open_at_start = open_now == UINT64_MAX ? 0 : open_now;
  fd_input.io_threads = server_options.io_threads;
  fd_input.max_connections = server_options.max_connections;
  fd_input.max_connections_given = args.max_connections_given;
  fd_input.probe_connections = kMaxProbeConnections;
  fd_input.store_fds = state::kStoreMaxFds;
  fd_input.webhooks = static_cast<int>(options->config.webhooks.size());
  auto fds = PlanFds(fd_input);
  if (!fds.ok()) {
    Log(LogLevel::kError, "tierstream: %s", fds.status().ToString().c_str());
    return 2;
  }
  const std::string limit = std::to_string(fd_limit.soft) +
                            (fd_limit.raised_from == fd_limit.soft
                                 ? std::string()
                                 : " (raised from " + std::to_string(fd_limit.raised_from) + ")");
  if (fds->lowered) {
    Log(LogLevel::kWarning,
        "tierstream: --max-connections lowered from %d to %d to fit the open-file limit "
        "%s: %s; raise the limit (ulimit -n; systemd: LimitNOFILE=) to at least %llu for %d",
        server_options.max_connections, fds->max_connections, limit.c_str(),
        fds->Describe(fd_input).c_str(), static_cast<unsigned long long>(fds->needed),
        server_options.max_connections);
  } else {
    Log(LogLevel::kInfo, "tierstream: open-file limit %s: %s", limit.c_str(),
        fds->Describe(fd_input).c_str());
  }
  server_options.max_connections = fds->max_connections;
  // The Kafka mode: every instance answers every query (app/cluster.h).
  std::unique_ptr<Cluster> cluster;
  if (kafka_mode) {
    cluster = std::make_unique<Cluster>(server_options.token);
    server_options.cluster = cluster->Hooks();
  }
  Log(LogLevel::kInfo, "tierstream: starting (data %s, tz %s)", args.common.data_dir.c_str(),
      FormatUtcOffset(options->config.utc_offset_ms).c_str());
  // HTTP first, so that probes learn the server is alive but recovering
  // (/healthz "starting", /readyz 503) while Open() replays the log.
  Server server(nullptr, server_options);
  Status s = server.Start();
  if (!s.ok()) {
    Log(LogLevel::kError, "tierstream: %s", s.ToString().c_str());
    return 1;
  }
  if (!args.server.http_address.empty()) {
    Log(LogLevel::kInfo, "tierstream: HTTP API on %s (port %u)", args.server.http_address.c_str(),
        server.http_port());
  }
  std::thread io([&server] { server.Run(); });
  // A failed part of the pipeline (an exception escaped a shard worker or the
  // committer) shuts the server down as a failed io thread does: it stops
  // accepting, connections answer what they took (ingest is refused by
  // then), and serve exits 1; a restart recovers every acknowledged event.
  std::atomic<bool> pipeline_failed{false};
  options->on_failure = [&server, &pipeline_failed](const Status& failure) {
    Log(LogLevel::kError, "tierstream: %s; shutting down", failure.ToString().c_str());
    pipeline_failed.store(true);
    server.Stop();
  };
  if (kafka_mode) {
    options->on_checkpoint = [&changelog](pipeline::CheckpointImage image) {
      if (kafka::KafkaIngest* ingest = changelog.load(std::memory_order_acquire)) {
        ingest->OnCheckpoint(image);
      }
    };
  }
  std::unique_ptr<pipeline::Pipeline> pipeline = OpenPipeline(*options);
  if (pipeline == nullptr) {
    server.Stop();
    io.join();
    return 1;
  }
  const pipeline::RecoveryStats& recovered = pipeline->recovery();
  Log(LogLevel::kInfo,
      "tierstream: recovered %llu users and replayed %llu logged events in %.3f s (%u shards)",
      static_cast<unsigned long long>(recovered.users_loaded),
      static_cast<unsigned long long>(recovered.log_events_replayed), recovered.seconds,
      pipeline->shards());
  std::atomic<bool> webhooks_failed{false};
  if (webhooks != nullptr) {
    // Before the API serves: their figures in /healthz are real from the start.
    s = webhooks->Start(pipeline.get(), [&server, &webhooks_failed](const Status& failure) {
      Log(LogLevel::kError, "tierstream: %s; shutting down (a restart resumes every webhook)",
          failure.ToString().c_str());
      webhooks_failed.store(true);
      server.Stop();
    });
    if (!s.ok()) {
      Log(LogLevel::kError, "tierstream: %s", s.ToString().c_str());
      webhooks->Stop();
      server.Stop();
      io.join();
      (void)pipeline->Close();
      return 1;
    }
  }
  // In the Kafka mode the group and the producers start first: the API
  // turns ready (/readyz, POST /v1/events, TCP) only once it can produce.
  std::unique_ptr<kafka::KafkaIngest> kafka_ingest;
  std::atomic<bool> kafka_failed{false};
  if (kafka_mode) {
    auto started = kafka::KafkaIngest::Start(
        kafka_options, pipeline.get(), [&server, &kafka_failed](const Status& failure) {
          Log(LogLevel::kError, "tierstream: %s; shutting down", failure.ToString().c_str());
          kafka_failed.store(true);
          server.Stop();
        });
    if (started.ok()) {
      kafka_ingest = std::move(started).value();
      changelog.store(kafka_ingest.get(), std::memory_order_release);
      s = cluster->Start(
          kafka_options,
          Cluster::Advertised(args.advertise, args.server.http_address, server.http_port()),
          kafka_ingest.get(), pipeline.get());
    } else {
      s = started.status();
    }
  }
  if (s.ok()) s = server.AttachPipeline(pipeline.get());
  if (s.ok()) {
    if (!server_options.tcp_address.empty()) {
      Log(LogLevel::kInfo, "tierstream: TCP NDJSON ingest on %s (port %u)",
          args.server.tcp_address.c_str(), server.tcp_port());
    }
  } else if (s.code() != StatusCode::kUnavailable) {  // not merely stopped by a signal meanwhile
    Log(LogLevel::kError, "tierstream: %s", s.ToString().c_str());
    server.Stop();
  }
  io.join();
  const bool attach_failed = !s.ok() && s.code() != StatusCode::kUnavailable;
  // Leaves the group and waits for its batches: the pipeline then holds
  // every record it read. Kafka's acknowledgements are waited for at most
  // 10 s in all (a cluster that cannot be reached does not hold us longer).
  if (kafka_mode) kafka::StartShutdown(std::chrono::seconds(10));
  if (cluster != nullptr) cluster->Stop();
  if (kafka_ingest != nullptr) kafka_ingest->Stop();
  changelog.store(nullptr, std::memory_order_release);
  // Before the pipeline closes: a batch in flight is sent again after the
  // next start.
  if (webhooks != nullptr) webhooks->Stop();
  s = pipeline->Close();
  if (pipeline_failed.load()) {
    Log(LogLevel::kError,
        "tierstream: exiting after a failed pipeline part (%s); a restart recovers every "
        "acknowledged event",
        s.ToString().c_str());
    return 1;
  }
  if (!s.ok()) {
    Log(LogLevel::kError, "tierstream: shutdown checkpoint failed: %s", s.ToString().c_str());
    return 1;
  }
  if (attach_failed || server.failed() || webhooks_failed.load() || kafka_failed.load()) return 1;
  Log(LogLevel::kInfo, "tierstream: state committed, bye");
  return 0;
}

int RunReplay(const ReplayArgs& args) {
  auto options = MakePipelineOptions(args.common);
  if (!options.ok()) {
    Log(LogLevel::kError, "tierstream: %s", options.status().ToString().c_str());
    return 2;
  }
  if (!AllReadable(args.files)) return 1;
  options->write_log = false;  // offline: state is committed by checkpoints and Close()
  options->max_inflight_events = 512u << 10;
  // Offline, a checkpoint only bounds the work lost if the load is killed:
  // write each user once at the end rather than many times on the way.
  options->checkpoint_dirty_users = 4'000'000;
  std::unique_ptr<pipeline::Pipeline> opened = OpenPipeline(*options);
  if (opened == nullptr) return 1;
  pipeline::Pipeline& p = *opened;
  std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, outstanding{0};
  std::mutex failure_mu;
  Status failure;  // the first batch that could not be committed
  ingest::Decoder decoder;
  const auto start = Clock::now();
  uint64_t bytes_total = 0, lines_total = 0;
  tools::Progress progress("replay", TotalBytes(args.files), "lines", "events");
  pipeline::FileSource source(args.files);
  Status read;
  for (uint32_t f = 0; f < source.partitions() && read.ok(); ++f) {
    const std::string& file = source.file(f);
    uint64_t line = 1, file_bytes = 0;
    read = source.ReadFrom(f, 0, [&](uint64_t position, std::string_view lines) {
      bytes_total += position - file_bytes;
      file_bytes = position;
      auto batch = p.NewBatch();
      pipeline::BatchBuilder builder(batch.get(), p.reject_log(), file);
      const uint64_t decoded = decoder.DecodeLines(lines, line, &batch->arena, &builder);
      line += decoded;
      lines_total += decoded;
      p.WaitForCapacity();
      outstanding.fetch_add(1);
      p.Submit(std::move(batch), [&](pipeline::BatchOutcome o) {
        accepted.fetch_add(o.accepted);
        duplicates.fetch_add(o.duplicates);
        rejected.fetch_add(o.rejected);
        if (!o.status.ok()) {
          std::lock_guard<std::mutex> lock(failure_mu);
          if (failure.ok()) failure = o.status;
        }
        outstanding.fetch_sub(1);
      });
      progress.Update(bytes_total, lines_total);
      return Status::Ok();
    });
  }
  // The batches in flight report into this frame: wait for them, also after
  // a failed read.
  while (outstanding.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!read.ok()) {
    Log(LogLevel::kError, "tierstream: %s", std::string(read.message()).c_str());
    return 1;
  }
  Status s = p.Close();
  progress.Finish(bytes_total, lines_total);
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(failure_mu);
    if (s.ok()) s = failure;
  }
  if (!s.ok()) {
    Log(LogLevel::kError, "tierstream: replay failed: %s", s.ToString().c_str());
    return 1;
  }
  const uint64_t events = accepted.load() + duplicates.load() + rejected.load();
  std::printf(
      "{\"accepted\":%llu,\"duplicates\":%llu,\"rejected\":%llu,\"seconds\":%.3f,"
      "\"events_per_second\":%.0f,\"mb_per_second\":%.1f,\"peak_rss_mb\":%.1f}\n",
      static_cast<unsigned long long>(accepted.load()),
      static_cast<unsigned long long>(duplicates.load()),
      static_cast<unsigned long long>(rejected.load()), secs,
      secs > 0 ? static_cast<double>(events) / secs : 0.0,
      secs > 0 ? static_cast<double>(bytes_total) / secs / 1e6 : 0.0,
      static_cast<double>(PeakRssKb()) / 1024.0);
  if (rejected.load() > 0) {
    // The summary only counts them; the lines and their reasons are kept.
    std::fflush(stdout);
    std::fprintf(stderr,
                 "tierstream: %llu lines rejected; each with its reason in %s/rejected.ndjson\n",
                 static_cast<unsigned long long>(rejected.load()), args.common.data_dir.c_str());
  }
  return 0;
}

namespace {

struct EvalSink final : ingest::DecodeSink {
  verify::BatchEvaluator* eval = nullptr;
  // The server's future guard, as of now: an event it rejected as too far
  // ahead is rejected here too (unless time has caught up with it since).
  ingest::TsLimit limit;
  ingest::TsLimit ts_limit() const override { return limit; }
  void OnEvent(const ingest::Event& e) override { eval->Add(e); }
  void OnReject(uint64_t, std::string_view, std::string_view) override { eval->AddRejected(1); }
};

// The pipeline's profile as the evaluator's value: compared field by field,
// not through the JSON the API would render of it.
verify::Profile ToVerifyProfile(const state::Profile& p) {
  verify::Profile v;
  v.user_id = p.user_id;
  v.member = p.member;
  v.joined_at = p.joined_at;
  if (p.last_active != kNoTs) v.last_active = p.last_active;
  v.interactions_7d = p.interactions_7d;
  v.interactions_30d = p.interactions_30d;
  v.orders_total = p.orders_total;
  v.orders_30d = p.orders_30d;
  v.repeat_orders = p.repeat_orders;
  v.spend_30d_fen = p.spend_30d_fen;
  v.spend_total_fen = p.spend_total_fen;
  v.points = p.points;
  v.referrals = p.referrals;
  v.tier = std::string(state::TierName(p.tier));
  return v;
}

}  // namespace

int RunVerify(const VerifyArgs& args) {
  auto options = MakePipelineOptions(args.common);
  if (!options.ok()) {
    Log(LogLevel::kError, "tierstream: %s", options.status().ToString().c_str());
    return 2;
  }
  if (!AllReadable(args.files)) return 2;
  if (!std::filesystem::exists(args.common.data_dir + "/db")) {
    Log(LogLevel::kError, "tierstream: no data in %s", args.common.data_dir.c_str());
    return 2;
  }
  // Before the long part: a data dir a server holds cannot be read.
  if (DataDirInUse(args.common.data_dir)) {
    Log(LogLevel::kError,
        "tierstream: data dir %s is in use by another tierstream process (a running server?); "
        "stop it first",
        args.common.data_dir.c_str());
    return 2;
  }
  const auto start = Clock::now();
  verify::Thresholds thresholds;
  thresholds.high_value_spend_fen = options->config.rules.high_value_spend_fen;
  thresholds.high_value_repeat_orders = options->config.rules.high_value_repeat_orders;
  thresholds.new_days = options->config.rules.new_days;
  thresholds.active_interactions_7d = options->config.rules.active_interactions_7d;
  verify::BatchEvaluator eval(options->config.utc_offset_ms, thresholds);
  ingest::Decoder decoder;
  EvalSink sink;
  sink.eval = &eval;
  if (const int64_t ahead = options->config.max_future_ms; ahead > 0) {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    sink.limit = ingest::TsLimit{now + ahead, ahead};
  }
  uint64_t bytes = 0, lines_read = 0;
  {
    tools::Progress progress("verify (reading files)", TotalBytes(args.files), "lines", "events");
    pipeline::FileSource source(args.files);
    for (uint32_t f = 0; f < source.partitions(); ++f) {
      const uint64_t before = bytes;
      Status read = source.ReadFrom(f, 0, [&](uint64_t position, std::string_view lines) {
        bytes = before + position;
        Arena arena;  // the evaluator copies what it keeps
        lines_read += decoder.DecodeLines(lines, 1, &arena, &sink);
        progress.Update(bytes, lines_read);
        return Status::Ok();
      });
      if (!read.ok()) {
        Log(LogLevel::kError, "tierstream: %s", std::string(read.message()).c_str());
        return 2;
      }
    }
    progress.Finish(bytes, lines_read);
  }
  const auto profiles = eval.Profiles();
  const verify::Kpis kpis = eval.ComputeKpis();

  options->write_log = false;
  options->log_to_stderr = false;
  std::unique_ptr<pipeline::Pipeline> opened = OpenPipeline(*options);
  if (opened == nullptr) return 2;
  pipeline::Pipeline& p = *opened;
  size_t differences = 0;
  auto report = [&](const std::string& line) {
    if (++differences <= args.max_listed) std::printf("diff %s\n", line.c_str());
  };
  {
    tools::Progress progress("verify (comparing)", profiles.size(), "users", "users");
    uint64_t compared = 0;
    for (const auto& [id, want] : profiles) {
      const std::optional<pipeline::ProfileReport> got =
          pipeline::Await(p, &pipeline::Pipeline::GetUser, id);
      if (!got) {
        report(id + ": missing from the data dir");
      } else {
        for (const auto& d : verify::DiffProfile(ToVerifyProfile(got->profile), want)) report(d);
      }
      ++compared;
      // The clock is read only every 1024 users: a profile takes microseconds.
      if ((compared & 1023) == 0) progress.Update(compared, compared);
    }
    progress.Finish(compared, compared);
  }
  // Counters too: list a file as often as it was sent, and duplicates and
  // rejections match as well. The KPIs as the API serves them: their ratios
  // are computed as they are rendered.
  const std::string live_kpis =
      server::RenderKpisJson(pipeline::Await(p, &pipeline::Pipeline::GetKpis));
  for (const auto& d : verify::DiffKpis(live_kpis, kpis, true)) report("kpi " + d);
  Status s = p.Close();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("verify: %zu users, %lld events accepted, %zu differences (%.2f s)\n",
              profiles.size(), static_cast<long long>(kpis.events_accepted), differences, secs);
  if (!s.ok()) {
    Log(LogLevel::kError, "tierstream: %s", s.ToString().c_str());
    return 2;
  }
  return differences == 0 ? 0 : 1;
}

int RunGen(const tools::GenOptions& options) {
  Status valid = tools::ValidateGenOptions(options);
  if (!valid.ok()) {
    // A usage error, like CLI11's own: no timestamp.
    std::fprintf(stderr, "tierstream: gen: %s\nRun with --help for more information.\n",
                 valid.ToString().c_str());
    return 2;
  }
  if (!tools::GenerateStream(options, stdout)) {
    Log(LogLevel::kError, "tierstream: gen: write failed");
    return 1;
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

namespace {
bool LoadClientToken(const ClientArgs& client, std::string* token) {
  if (client.token_file.empty()) return true;
  auto t = tools::ReadTokenFile(client.token_file);
  if (!t.ok()) {
    Log(LogLevel::kError, "tierstream: %s", t.status().ToString().c_str());
    return false;
  }
  *token = *t;
  return true;
}
}  // namespace

namespace {

// "1,234,567"
std::string Grouped(uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// One progress line on a terminal's stderr, rewritten in place (at most ten
// times a second) from the server's acks.
class SendProgress {
 public:
  SendProgress(std::string name, uint64_t total_lines)
      : name_(std::move(name)), total_(total_lines), start_(Clock::now()) {}

  void OnAck(const tools::TcpAck& ack) {
    const auto now = Clock::now();
    if (now - shown_ < std::chrono::milliseconds(100) && ack.durable_lines < total_) return;
    shown_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(ack.durable_lines) / secs : 0;
    std::string line = "\r" + name_ + ": " + Grouped(ack.durable_lines) + " lines durable";
    char buf[128];
    if (total_ > 0) {
      std::snprintf(buf, sizeof buf, " (%.1f%%)",
                    100.0 * static_cast<double>(ack.durable_lines) / static_cast<double>(total_));
      line += buf;
    }
    std::snprintf(buf, sizeof buf, ", %s ev/s", Grouped(static_cast<uint64_t>(rate)).c_str());
    line += buf;
    if (rate > 0 && total_ > ack.durable_lines) {
      std::snprintf(buf, sizeof buf, ", ETA %.0f s",
                    static_cast<double>(total_ - ack.durable_lines) / rate);
      line += buf;
    }
    line += "\x1b[K";  // clear what a longer previous line left
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    drawn_ = true;
  }

  void Clear() {
    if (drawn_) std::fputs("\r\x1b[K", stderr);
  }

 private:
  std::string name_;
  uint64_t total_;
  Clock::time_point start_;
  Clock::time_point shown_{};
  bool drawn_ = false;
};

// Lines as the server numbers them: a last line without newline counts.
uint64_t CountLines(std::string_view data) {
  uint64_t n = static_cast<uint64_t>(std::count(data.begin(), data.end(), '\n'));
  return n + (!data.empty() && data.back() != '\n' ? 1 : 0);
}

}  // namespace

int RunSend(const std::vector<std::string>& files, const ClientArgs& client) {
  std::string token;
  if (!LoadClientToken(client, &token)) return kSendFailed;
  const bool show_progress = ::isatty(STDERR_FILENO) == 1;
  int rc = kSendOk;
  for (const std::string& file : files) {
    std::string data;
    if (file == "-") {
      std::stringstream ss;
      ss << std::cin.rdbuf();
      data = ss.str();
    } else {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "tierstream: cannot read %s\n", file.c_str());
        return kSendFailed;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      data = ss.str();
    }
    std::optional<SendProgress> progress;
    if (show_progress) progress.emplace(file == "-" ? "stdin" : file, CountLines(data));
    auto reply =
        tools::TcpSend(client.tcp_address, data, 600, token, [&](const tools::TcpAck& ack) {
          if (progress) progress->OnAck(ack);
        });
    if (progress) progress->Clear();
    if (!reply.ok()) {
      std::fprintf(stderr, "tierstream: %s\n", reply.status().ToString().c_str());
      return kSendFailed;
    }
    std::printf("%s\n", reply->c_str());
    std::fflush(stdout);
    if (reply->rfind("{\"error\"", 0) == 0) {
      // Refused (disk low, store failure): the lines after "durable_lines"
      // were not taken; re-sending the file is safe (duplicates are known).
      return kSendFailed;
    }
    if (reply->find("\"rejected\":0,") == std::string::npos) rc = kSendSomeRejected;
  }
  return rc;
}

namespace {

// GETs `target` and prints the answer's body; exit 0 on 200.
int PrintGet(const ClientArgs& client, const std::string& target) {
  std::string token;
  if (!LoadClientToken(client, &token)) return 2;
  auto r = tools::HttpRequest(client.http_address, "GET", target, {}, 30, token);
  if (!r.ok()) {
    Log(LogLevel::kError, "tierstream: %s", r.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", r->body.c_str());
  return r->status == 200 ? 0 : 1;
}

}  // namespace

int RunUser(const std::string& user_id, const ClientArgs& client) {
  return PrintGet(client, "/v1/users/" + tools::UrlEncode(user_id));
}

int RunExplain(const std::string& user_id, const ClientArgs& client) {
  return PrintGet(client, "/v1/users/" + tools::UrlEncode(user_id) + "/explain");
}

int RunKpis(const ClientArgs& client) { return PrintGet(client, "/v1/kpis"); }

}  // namespace tierstream::app
