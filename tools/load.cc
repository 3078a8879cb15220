// Drives a running server with NDJSON chunks over many connections and
// measures ack and query latencies (load).
#include "tools/load.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "common/hash.h"
#include "common/json_writer.h"
#include "tools/client.h"

namespace tierstream::tools {

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0, Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

// A number field of a flat JSON answer, or -1.
int64_t Field(std::string_view json, std::string_view key) {
  std::string pattern = "\"";  // built by appends: GCC 12 warns falsely (-Wrestrict) on a + chain
  pattern.append(key).append("\":");
  size_t pos = json.find(pattern);
  if (pos == std::string_view::npos) return -1;
  return std::strtoll(json.data() + pos + pattern.size(), nullptr, 10);
}

// The string value of `key` (given with its quotes and colon, e.g.
// "\"user_id\":\"") in a flat JSON line, or "" (good enough for picking
// query targets and sampling event ids).
std::string_view StringField(std::string_view line, std::string_view key) {
  size_t pos = line.find(key);
  if (pos == std::string_view::npos) return {};
  pos += key.size();
  size_t end = line.find('"', pos);
  return end == std::string_view::npos ? std::string_view() : line.substr(pos, end - pos);
}

constexpr std::string_view kUserKey = "\"user_id\":\"";
constexpr std::string_view kEventKey = "\"event_id\":\"";
constexpr uint64_t kSampleEvery = 8;  // events whose changes are timed: 1 in 8

// Where a sampled event is: its chunk and its line in it (1-based).
struct EventPlace {
  uint32_t chunk;
  uint32_t line;
};

struct Latencies {
  std::vector<double> ms;
  double Percentile(double p) {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  }
  void Write(JsonWriter& w, std::string_view key) {
    w.Key(key).BeginObject();
    w.Key("n").Int(static_cast<int64_t>(ms.size()));
    w.Key("p50").Double(Percentile(0.50));
    w.Key("p99").Double(Percentile(0.99));
    w.Key("max").Double(ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()));
    w.EndObject();
  }
};

}  // namespace

int RunLoad(const LoadArgs& args) {
  if (args.tcp_address.empty() && args.http_address.empty()) {
    std::fprintf(stderr, "load: give --tcp or --http\n");
    return 2;
  }
  if (args.follow_changes && args.http_address.empty()) {
    std::fprintf(stderr, "load: --follow-changes needs --http\n");
    return 2;
  }
  std::string token;
  if (!args.token_file.empty()) {
    auto t = ReadTokenFile(args.token_file);
    if (!t.ok()) {
      std::fprintf(stderr, "load: %s\n", t.status().ToString().c_str());
      return 2;
    }
    token = *t;
  }
  std::string data;
  for (const std::string& f : args.files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "load: cannot read %s\n", f.c_str());
      return 2;
    }
    data.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!data.empty() && data.back() != '\n') data.push_back('\n');
  }
  // Chunks of whole lines; a sample of user ids for the queries.
  std::vector<std::string_view> chunks;
  std::vector<std::string> query_users;
  std::unordered_map<std::string_view, EventPlace> sampled;
  size_t lines = 0;
  for (size_t start = 0; start < data.size();) {
    size_t end = start, n = 0;
    while (end < data.size() && n < args.chunk_events) {
      size_t nl = data.find('\n', end);
      const size_t line_start = end;
      end = nl == std::string::npos ? data.size() : nl + 1;
      ++n;
      if (args.follow_changes) {
        std::string_view id =
            StringField(std::string_view(data).substr(line_start, end - line_start), kEventKey);
        if (!id.empty() && Hash64(id) % kSampleEvery == 0) {
          sampled.emplace(
              id, EventPlace{static_cast<uint32_t>(chunks.size()), static_cast<uint32_t>(n)});
        }
      }
    }
    std::string_view chunk(data.data() + start, end - start);
    std::string_view user = StringField(chunk.substr(0, chunk.find('\n')), kUserKey);
    if (!user.empty() && query_users.size() < 100000) query_users.emplace_back(user);
    chunks.push_back(chunk);
    lines += n;
    start = end;
  }
  const bool tcp = !args.tcp_address.empty();
  const int connections = args.ordered ? 1 : std::max(1, args.connections);

  std::atomic<size_t> next{0};
  std::atomic<int64_t> accepted{0}, duplicates{0}, rejected{0}, failed{0};
  std::mutex mu;
  Latencies acks, users, kpis;
  std::vector<std::pair<double, size_t>> ack_times;  // (ms since start, chunk)
  // Per chunk, its acks as (lines durable, ms since start); each chunk is
  // written by the one sender that sent it.
  std::vector<std::vector<std::pair<uint64_t, double>>> chunk_acks(chunks.size());
  std::atomic<bool> loading{true};
  const auto start = Clock::now();

  auto sender = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= chunks.size()) return;
      if (args.rate > 0) {
        const double due_s = static_cast<double>(i * args.chunk_events) / args.rate;
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(due_s)));
      }
      const auto t0 = Clock::now();
      std::string reply;
      bool ok = false;
      if (tcp) {
        auto r = TcpSend(args.tcp_address, chunks[i], 600, token, [&](const TcpAck& ack) {
          if (args.follow_changes) {
            chunk_acks[i].emplace_back(ack.durable_lines, MsSince(start, Clock::now()));
          }
        });
        ok = r.ok() && r->rfind("{\"accepted\":", 0) == 0;
        if (r.ok()) reply = std::move(*r);
      } else {
        auto r = HttpRequest(args.http_address, "POST", "/v1/events", chunks[i], 600, token);
        ok = r.ok() && r->status == 200;
        if (r.ok()) reply = std::move(r->body);
      }
      const auto t1 = Clock::now();
      if (!ok) {
        failed.fetch_add(1);
        std::fprintf(stderr, "load: chunk %zu failed: %s\n", i, reply.substr(0, 200).c_str());
        continue;
      }
      chunk_acks[i].emplace_back(UINT64_MAX, MsSince(start, t1));  // the whole chunk
      accepted.fetch_add(Field(reply, "accepted"));
      duplicates.fetch_add(Field(reply, "duplicates"));
      rejected.fetch_add(Field(reply, "rejected"));
      std::lock_guard<std::mutex> lock(mu);
      acks.ms.push_back(MsSince(t0, t1));
      ack_times.emplace_back(MsSince(start, t1), i);
    }
  };
  auto querier = [&] {
    std::mt19937_64 rng(42);
    const std::string& http = args.http_address;
    const auto period = std::chrono::duration<double>(1.0 / args.query_rate);
    auto due = Clock::now();
    for (uint64_t k = 0; loading.load(); ++k) {
      due += std::chrono::duration_cast<Clock::duration>(period);
      std::this_thread::sleep_until(due);
      const bool user_query = k % 2 == 0 && !query_users.empty();
      const std::string target =
          user_query ? "/v1/users/" + UrlEncode(query_users[rng() % query_users.size()])
                     : std::string("/v1/kpis");
      const auto t0 = Clock::now();
      auto r = HttpRequest(http, "GET", target, {}, 60, token);
      const double ms = MsSince(t0, Clock::now());
      if (!r.ok() || (r->status != 200 && r->status != 404)) continue;
      (user_query ? users : kpis).ms.push_back(ms);
    }
  };

  // The change feed's consumer: (arrival ms since start, the causing event).
  std::vector<std::pair<double, EventPlace>> arrivals;
  uint64_t changes_read = 0;
  bool feed_failed = false;
  std::atomic<bool> drain{false};
  auto follower = [&] {
    std::string after;
    for (;;) {
      const bool draining = drain.load();
      std::string target =
          "/v1/changes?limit=10000&wait_ms=" + std::string(draining ? "1000" : "200");
      if (!after.empty()) target += "&after=" + after;
      auto r = HttpRequest(args.http_address, "GET", target, {}, 60, token);
      const double now = MsSince(start, Clock::now());
      std::string_view next_cursor;
      if (!r.ok() || r->status != 200 ||
          (next_cursor = StringField(r->body, "\"next\":\"")).empty()) {
        std::fprintf(stderr, "load: GET /v1/changes failed: %s\n",
                     r.ok() ? r->body.substr(0, 200).c_str() : r.status().ToString().c_str());
        feed_failed = true;
        return;
      }
      after = std::string(next_cursor);
      std::string_view body = r->body;
      size_t n = 0;
      for (size_t pos = body.find("\"cursor\":"); pos != std::string_view::npos;
           pos = body.find("\"cursor\":", pos + 1)) {
        ++n;
      }
      changes_read += n;
      for (size_t pos = body.find(kEventKey); pos != std::string_view::npos;
           pos = body.find(kEventKey, pos + 1)) {
        auto it = sampled.find(StringField(body.substr(pos), kEventKey));
        if (it != sampled.end()) arrivals.emplace_back(now, it->second);
      }
      if (n == 0 && draining) return;  // loading is over and the feed is read
    }
  };

  std::vector<std::thread> threads;
  std::thread follow_thread;
  if (args.follow_changes) follow_thread = std::thread(follower);
  for (int c = 0; c < connections; ++c) threads.emplace_back(sender);
  std::thread query_thread;
  if (args.query_rate > 0 && !args.http_address.empty()) query_thread = std::thread(querier);
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  loading.store(false);
  if (query_thread.joinable()) query_thread.join();
  drain.store(true);
  if (follow_thread.joinable()) follow_thread.join();

  // Each sampled change's delay after the ack that covered its event (the
  // first ack of its chunk durable past its line). The server makes a change
  // visible and acks its event at about the same moment: a change read
  // before its ack counts as 0 ms, and how many were is reported.
  Latencies change_delay;
  int64_t before_ack = 0;
  for (const auto& [arrived, place] : arrivals) {
    double acked = -1;
    for (const auto& [durable, ms] : chunk_acks[place.chunk]) {
      if (durable >= place.line) {
        acked = ms;
        break;
      }
    }
    if (acked < 0) continue;  // its chunk failed
    if (arrived < acked) ++before_ack;
    change_delay.ms.push_back(std::max(0.0, arrived - acked));
  }

  // The longest time with no acknowledgement, and the chunk that ended it.
  std::sort(ack_times.begin(), ack_times.end());
  double max_gap = ack_times.empty() ? 0 : ack_times.front().first;
  size_t gap_chunk = 0;
  for (size_t i = 1; i < ack_times.size(); ++i) {
    if (ack_times[i].first - ack_times[i - 1].first > max_gap) {
      max_gap = ack_times[i].first - ack_times[i - 1].first;
      gap_chunk = ack_times[i].second;
    }
  }

  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("mode").String(tcp ? "tcp" : "http");
  w.Key("connections").Int(connections);
  w.Key("chunk_events").Int(static_cast<int64_t>(args.chunk_events));
  w.Key("lines").Int(static_cast<int64_t>(lines));
  w.Key("seconds").Double(seconds);
  w.Key("events_per_s").Double(static_cast<double>(lines) / seconds);
  w.Key("accepted").Int(accepted.load());
  w.Key("duplicates").Int(duplicates.load());
  w.Key("rejected").Int(rejected.load());
  w.Key("failed_chunks").Int(failed.load());
  acks.Write(w, "ack_ms");
  w.Key("max_ack_gap_ms").Double(max_gap);
  w.Key("max_ack_gap_before_line").Int(static_cast<int64_t>(gap_chunk * args.chunk_events));
  if (args.follow_changes) {
    w.Key("changes_read").Int(static_cast<int64_t>(changes_read));
    change_delay.Write(w, "change_after_ack_ms");
    w.Key("changes_read_before_ack").Int(before_ack);
  }
  if (args.query_rate > 0) {
    users.Write(w, "user_query_ms");
    kpis.Write(w, "kpis_query_ms");
  }
  w.EndObject();
  std::printf("%s\n", out.c_str());
  return failed.load() == 0 && !feed_failed ? 0 : 1;
}

}  // namespace tierstream::tools
