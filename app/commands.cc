#include "app/commands.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <optional>
#include <thread>

#include <unistd.h>

#include "app/client.h"
#include "app/server.h"
#include "common/time.h"
#include "ingest/decoder.h"
#include "pipeline/pipeline.h"
#include "verify/batch_eval.h"
#include "verify/diff.h"

namespace tierstream::app {

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
  options.checkpoint_interval_ms = static_cast<int>(std::max<uint32_t>(args.checkpoint_interval_ms, 1));
  if (!args.config_file.empty()) {
    auto config = state::LoadConfigFile(args.config_file);
    if (!config.ok()) return config.status();
    options.config = *config;
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

// Reads `file` ('-' = stdin) in chunks of whole lines and calls fn on each;
// the last chunk may end without a newline. Adds the bytes read to *bytes.
bool ForEachChunk(const std::string& file, uint64_t* bytes,
                  const std::function<void(std::string_view)>& fn) {
  std::FILE* in = file == "-" ? stdin : std::fopen(file.c_str(), "rb");
  if (in == nullptr) {
    std::fprintf(stderr, "tierstream: cannot read %s\n", file.c_str());
    return false;
  }
  constexpr size_t kChunk = 4 << 20;
  ingest::PaddedBuffer buf(kChunk + ingest::kMaxLineBytes);
  bool eof = false;
  while (!eof) {
    const size_t room = buf.capacity() - buf.size();
    const size_t n = std::fread(buf.data() + buf.size(), 1, room, in);
    buf.set_size(buf.size() + n);
    *bytes += n;
    eof = n < room;
    std::string_view view = buf.view();
    size_t cut = view.size();
    if (!eof) {
      const size_t nl = view.rfind('\n');
      if (nl != std::string_view::npos) {
        cut = nl + 1;
      } else if (view.size() < buf.capacity()) {
        continue;
      }  // else: a line longer than the buffer; the decoder rejects it
    }
    fn(view.substr(0, cut));
    buf.Consume(cut);
  }
  if (in != stdin) std::fclose(in);
  return true;
}

}  // namespace

int RunServe(const ServeArgs& args) {
  auto options = MakePipelineOptions(args.common);
  if (!options.ok()) {
    std::fprintf(stderr, "tierstream: %s\n", options.status().ToString().c_str());
    return 2;
  }
  ServerOptions server_options = args.server;
  if (!args.token_file.empty()) {
    auto token = ReadTokenFile(args.token_file);
    if (!token.ok()) {
      std::fprintf(stderr, "tierstream: %s\n", token.status().ToString().c_str());
      return 2;
    }
    server_options.token = *token;
  }
  for (const std::string* address : {&server_options.http_address, &server_options.tcp_address}) {
    if (!address->empty() && address->rfind("127.", 0) != 0 && address->rfind("[::1]", 0) != 0 &&
        address->rfind("localhost", 0) != 0 && server_options.token.empty()) {
      std::fprintf(stderr,
                   "tierstream: WARNING: %s is reachable from other machines and no "
                   "--token-file guards it\n",
                   address->c_str());
    }
  }
  std::fprintf(stderr, "tierstream: starting (data %s, tz %s)\n", args.common.data_dir.c_str(),
               FormatUtcOffset(options->config.utc_offset_ms).c_str());
  // HTTP first, so that probes learn the server is alive but recovering
  // (/healthz "starting", /readyz 503) while Open() replays the log.
  Server server(nullptr, server_options);
  Status s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "tierstream: %s\n", s.ToString().c_str());
    return 1;
  }
  if (!args.server.http_address.empty()) {
    std::fprintf(stderr, "tierstream: HTTP API on %s (port %u)\n", args.server.http_address.c_str(),
                 server.http_port());
  }
  std::thread io([&server] { server.Run(); });
  auto pipeline = pipeline::Pipeline::Open(*options);
  if (!pipeline.ok()) {
    std::fprintf(stderr, "tierstream: cannot open %s: %s\n", args.common.data_dir.c_str(),
                 pipeline.status().ToString().c_str());
    server.Stop();
    io.join();
    return 1;
  }
  s = server.AttachPipeline(pipeline->get());
  if (s.ok()) {
    if (!args.server.tcp_address.empty()) {
      std::fprintf(stderr, "tierstream: TCP NDJSON ingest on %s (port %u)\n",
                   args.server.tcp_address.c_str(), server.tcp_port());
    }
  } else if (s.code() != StatusCode::kUnavailable) {  // not merely stopped by a signal meanwhile
    std::fprintf(stderr, "tierstream: %s\n", s.ToString().c_str());
    server.Stop();
  }
  io.join();
  const bool attach_failed = !s.ok() && s.code() != StatusCode::kUnavailable;
  s = (*pipeline)->Close();
  if (!s.ok()) {
    std::fprintf(stderr, "tierstream: shutdown checkpoint failed: %s\n", s.ToString().c_str());
    return 1;
  }
  if (attach_failed) return 1;
  std::fprintf(stderr, "tierstream: state committed, bye\n");
  return 0;
}

int RunReplay(const ReplayArgs& args) {
  auto options = MakePipelineOptions(args.common);
  if (!options.ok()) {
    std::fprintf(stderr, "tierstream: %s\n", options.status().ToString().c_str());
    return 2;
  }
  options->write_log = false;  // offline: state is committed by checkpoints and Close()
  options->max_inflight_events = 512u << 10;
  // Offline, a checkpoint only bounds the work lost if the load is killed:
  // write each user once at the end rather than many times on the way.
  options->checkpoint_dirty_users = 4'000'000;
  auto opened = pipeline::Pipeline::Open(*options);
  if (!opened.ok()) {
    std::fprintf(stderr, "tierstream: cannot open %s: %s\n", args.common.data_dir.c_str(),
                 opened.status().ToString().c_str());
    return 1;
  }
  pipeline::Pipeline& p = **opened;
  std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, outstanding{0};
  std::atomic<bool> failed{false};
  ingest::Decoder decoder;
  const auto start = Clock::now();
  uint64_t bytes_total = 0;
  for (const std::string& file : args.files) {
    uint64_t line = 1;
    const bool read = ForEachChunk(file, &bytes_total, [&](std::string_view lines) {
      auto batch = p.NewBatch();
      pipeline::BatchBuilder builder(batch.get(), p.reject_log(), file);
      line += decoder.DecodeLines(lines, line, &batch->arena, &builder);
      p.WaitForCapacity();
      outstanding.fetch_add(1);
      p.Submit(std::move(batch), [&](pipeline::BatchOutcome o) {
        accepted.fetch_add(o.accepted);
        duplicates.fetch_add(o.duplicates);
        rejected.fetch_add(o.rejected);
        if (!o.status.ok()) failed.store(true);
        outstanding.fetch_sub(1);
      });
    });
    if (!read) return 1;
  }
  while (outstanding.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Status s = p.Close();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (!s.ok() || failed.load()) {
    std::fprintf(stderr, "tierstream: replay failed: %s\n", s.ToString().c_str());
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
  return 0;
}

namespace {

struct EvalSink final : ingest::DecodeSink {
  verify::BatchEvaluator* eval = nullptr;
  void OnEvent(const ingest::Event& e) override { eval->Add(e); }
  void OnReject(uint64_t, std::string_view, std::string_view) override { eval->AddRejected(1); }
};

}  // namespace

int RunVerify(const VerifyArgs& args) {
  auto options = MakePipelineOptions(args.common);
  if (!options.ok()) {
    std::fprintf(stderr, "tierstream: %s\n", options.status().ToString().c_str());
    return 2;
  }
  if (!std::filesystem::exists(args.common.data_dir + "/db")) {
    std::fprintf(stderr, "tierstream: no data in %s\n", args.common.data_dir.c_str());
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
  uint64_t bytes = 0;
  for (const std::string& file : args.files) {
    const bool read = ForEachChunk(file, &bytes, [&](std::string_view lines) {
      Arena arena;  // the evaluator copies what it keeps
      decoder.DecodeLines(lines, 1, &arena, &sink);
    });
    if (!read) return 2;
  }
  const auto profiles = eval.Profiles();
  const verify::Kpis kpis = eval.ComputeKpis();

  options->write_log = false;
  options->log_to_stderr = false;
  auto opened = pipeline::Pipeline::Open(*options);
  if (!opened.ok()) {
    std::fprintf(stderr, "tierstream: cannot open %s: %s\n", args.common.data_dir.c_str(),
                 opened.status().ToString().c_str());
    return 2;
  }
  pipeline::Pipeline& p = **opened;
  size_t differences = 0;
  auto report = [&](const std::string& line) {
    if (++differences <= args.max_listed) std::printf("diff %s\n", line.c_str());
  };
  std::string body;
  for (const auto& [id, want] : profiles) {
    if (!p.GetUserSync(id, &body)) {
      report(id + ": missing from the data dir");
      continue;
    }
    for (const auto& d : verify::DiffProfile(body, want)) report(d);
  }
  // Counters: duplicates and rejections depend on what was re-sent, the
  // number of accepted events does not.
  const std::string live_kpis = p.GetKpisSync();
  for (const auto& d : verify::DiffKpis(live_kpis, kpis, false)) report("kpi " + d);
  for (const auto& d : verify::DiffKpis(live_kpis, kpis, true)) {
    if (d.rfind("events_accepted", 0) == 0) report("kpi " + d);
  }
  Status s = p.Close();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("verify: %zu users, %lld events accepted, %zu differences (%.2f s)\n",
              profiles.size(), static_cast<long long>(kpis.events_accepted), differences, secs);
  if (!s.ok()) {
    std::fprintf(stderr, "tierstream: %s\n", s.ToString().c_str());
    return 2;
  }
  return differences == 0 ? 0 : 1;
}

int RunGen(const GenOptions& options) {
  if (!GenerateStream(options, stdout)) {
    std::fprintf(stderr, "tierstream: gen: write failed\n");
    return 1;
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

namespace {
bool LoadClientToken(const ClientArgs& client, std::string* token) {
  if (client.token_file.empty()) return true;
  auto t = ReadTokenFile(client.token_file);
  if (!t.ok()) {
    std::fprintf(stderr, "tierstream: %s\n", t.status().ToString().c_str());
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

  void OnAck(const TcpAck& ack) {
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
    auto reply = TcpSend(client.tcp_address, data, 600, token, [&](const TcpAck& ack) {
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

int RunUser(const std::string& user_id, const ClientArgs& client) {
  std::string token;
  if (!LoadClientToken(client, &token)) return 2;
  auto r = HttpRequest(client.http_address, "GET", "/v1/users/" + UrlEncode(user_id), {}, 30, token);
  if (!r.ok()) {
    std::fprintf(stderr, "tierstream: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", r->body.c_str());
  return r->status == 200 ? 0 : 1;
}

int RunKpis(const ClientArgs& client) {
  std::string token;
  if (!LoadClientToken(client, &token)) return 2;
  auto r = HttpRequest(client.http_address, "GET", "/v1/kpis", {}, 30, token);
  if (!r.ok()) {
    std::fprintf(stderr, "tierstream: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", r->body.c_str());
  return r->status == 200 ? 0 : 1;
}

}  // namespace tierstream::app
