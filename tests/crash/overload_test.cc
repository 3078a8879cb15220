// Overload: producers push NDJSON over several TCP connections as fast as
// loopback allows — well over what the pipeline sustains — for
// OVERLOAD_SECONDS (default 8). The server must slow them down (it stops
// reading) instead of buffering: its RSS stays under the bound, throughput
// holds, and every acknowledged event is durable (checked after a kill -9).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tools/client.h"

namespace tierstream {
namespace {

using Clock = std::chrono::steady_clock;

long RssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

TEST(Overload, BackpressureBoundsMemoryAndLosesNothing) {
  const char* env = std::getenv("OVERLOAD_SECONDS");
  const int seconds = env != nullptr ? std::atoi(env) : 8;
  constexpr int kConnections = 4;
  constexpr long kRssBoundKb = 1536L * 1024;  // 1.5 GiB
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() + "/data");
  ASSERT_TRUE(server.ready());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0}, sent_lines{0};
  std::atomic<int> failed_connections{0};
  std::vector<std::thread> producers;
  for (int c = 0; c < kConnections; ++c) {
    producers.emplace_back([&, c] {
      // Each round is a fresh connection of 200k new events: every event is
      // new work for the pipeline, not a cheap duplicate.
      for (int round = 0; !stop.load(); ++round) {
        tools::GenOptions g;
        g.users = 50000;
        g.days = 6;
        g.events = 200000;
        g.seed = static_cast<uint64_t>(1000 + c * 1000 + round);
        g.duplicate_rate = 0;
        auto lines = testing::GenerateLines(g);
        std::string body = testing::Join(lines, 0, lines.size());
        auto reply = tools::TcpSend(server.tcp(), body, 120);
        if (!reply.ok() || reply->rfind("{\"accepted\":", 0) != 0) {
          failed_connections.fetch_add(1);
          return;
        }
        acked.fetch_add(testing::Field(*reply, "accepted"));
        sent_lines.fetch_add(lines.size());
      }
    });
  }
  long peak_kb = 0;
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::seconds(seconds)) {
    peak_kb = std::max(peak_kb, RssKb(server.pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop.store(true);
  for (auto& t : producers) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  peak_kb = std::max(peak_kb, RssKb(server.pid()));
  EXPECT_EQ(failed_connections.load(), 0);
  EXPECT_LT(peak_kb, kRssBoundKb);
  ASSERT_GT(acked.load(), 0u);

  // Everything acknowledged survives a kill -9.
  server.Kill();
  ASSERT_TRUE(server.Start());
  auto k = tools::HttpRequest(server.http(), "GET", "/v1/kpis");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(testing::Field(k->body, "events_accepted"), acked.load()) << k->body;
  std::printf(
      "overload: %d connections for %.1f s, %llu events acknowledged (%.0f events/s), "
      "server peak RSS %.0f MiB (bound %ld MiB)\n",
      kConnections, elapsed, static_cast<unsigned long long>(acked.load()),
      static_cast<double>(acked.load()) / elapsed, static_cast<double>(peak_kb) / 1024.0,
      kRssBoundKb / 1024);
}

}  // namespace
}  // namespace tierstream
