// The crash loop: concurrent HTTP and TCP senders stream a generated event
// set in batches while the server is killed with SIGKILL at random moments
// and restarted. Senders re-send every batch that was not acknowledged, and a
// share of those that were. In the end every profile and KPI must equal the
// batch evaluation of the event set: nothing acknowledged lost, nothing
// counted twice.
//
// Meanwhile two consumers follow the change feed, one by long poll and one
// by Server-Sent Events, each resuming from its last cursor after every
// kill: in the end each has seen every tier change exactly once (no cursor
// twice, no per-user seq missing or repeated, each `from` the previous
// `to`), both saw the same feed, and every user's last `to` is her tier.
//
// CRASH_LOOP_KILLS (default 5) and CRASH_LOOP_SEED set the run;
// scripts/crash-loop runs the long version (50 kills).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "tests/feed_consumer.h"
#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tools/client.h"

namespace tierstream {
namespace {

using Clock = std::chrono::steady_clock;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoi(v) : fallback;
}

// `extra`: more server flags.
void RunCrashLoop(const std::vector<std::string>& extra) {
  const int kills = EnvInt("CRASH_LOOP_KILLS", 5);
  const auto seed = static_cast<uint64_t>(EnvInt("CRASH_LOOP_SEED", 1));
  tools::GenOptions g;
  g.users = 3000;
  // Long enough for tiers to change by time alone (new ends on day 30,
  // dormant after 7 quiet days); re-sends stay within the wall-clock horizon.
  g.days = 40;
  g.events = 40000 + static_cast<uint64_t>(kills) * 8000;
  g.seed = seed;
  g.invalid_rate = 0.002;
  const auto lines = testing::GenerateLines(g);
  const testing::Reference ref = testing::Evaluate(lines);

  std::mt19937_64 rng(seed);
  std::vector<std::pair<size_t, size_t>> batches;  // [begin, end) of lines
  for (size_t i = 0; i < lines.size();) {
    size_t n = 50 + rng() % 2950;
    batches.emplace_back(i, std::min(lines.size(), i + n));
    i += n;
  }

  testing::TempDir dir;
  const std::string log = dir.path() + "/server.log";
  // Frequent checkpoints, snapshot one user per slice: kills land between
  // checkpoints and users change while their checkpoint is being snapshot,
  // so recovery from checkpoints and copy on write are both exercised.
  std::vector<std::string> flags = {"--checkpoint-interval-ms", "20", "--snapshot-slice", "1"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  testing::ServerProcess server(dir.path() + "/data", flags, log);
  ASSERT_TRUE(server.ready());

  std::mutex mu;
  std::deque<size_t> queue;
  for (size_t b = 0; b < batches.size(); ++b) queue.push_back(b);
  std::vector<bool> acked(batches.size(), false), resent(batches.size(), false);
  size_t acked_count = 0, sends = 0, failures = 0, resends = 0;
  std::atomic<bool> killing{true};

  auto sender = [&](int id) {
    std::mt19937_64 r(seed * 100 + static_cast<uint64_t>(id));
    const bool use_http = id % 2 == 0;
    for (;;) {
      size_t b = 0;
      bool got = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (queue.empty() && acked_count == batches.size()) {
          if (!killing.load()) return;  // everything acknowledged, re-sends drained
          // Keep the server loaded while it is being killed: re-send
          // acknowledged batches, which must all count as duplicates.
          queue.push_back(r() % batches.size());
          ++resends;
        }
        if (!queue.empty()) {
          b = queue.front();
          queue.pop_front();
          ++sends;
          got = true;
        }
      }
      if (!got) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      std::string body = testing::Join(lines, batches[b].first, batches[b].second);
      bool ok = false;
      if (use_http) {
        auto res = tools::HttpRequest(server.http(), "POST", "/v1/events", body, 10);
        ok = res.ok() && res->status == 200;
      } else {
        auto res = tools::TcpSend(server.tcp(), body, 10);
        ok = res.ok() && res->rfind("{\"accepted\":", 0) == 0;
      }
      std::lock_guard<std::mutex> lock(mu);
      if (!ok) {
        ++failures;
        queue.push_back(b);
        mu.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the server may be restarting
        mu.lock();
        continue;
      }
      if (!acked[b]) {
        acked[b] = true;
        ++acked_count;
        // Re-send a share of acknowledged batches, as a client that timed out would.
        if (!resent[b] && r() % 10 == 0) {
          resent[b] = true;
          ++resends;
          queue.push_back(b);
        }
      }
    }
  };

  const std::string http = server.http();
  testing::FeedConsumer polling(testing::FeedConsumer::Mode::kLongPoll, [http] { return http; });
  testing::FeedConsumer streaming(testing::FeedConsumer::Mode::kStream, [http] { return http; });
  std::vector<std::thread> senders;
  for (int i = 0; i < 4; ++i) senders.emplace_back(sender, i);
  std::vector<double> restart_seconds;
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 300));
    server.Kill();
    const auto t0 = Clock::now();
    ASSERT_TRUE(server.Start()) << "restart " << k;
    restart_seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  killing.store(false);
  for (auto& t : senders) t.join();

  const size_t bad = testing::ProfileDifferences(server.http(), ref, 5);
  auto k = tools::HttpRequest(server.http(), "GET", "/v1/kpis");
  ASSERT_TRUE(k.ok());
  auto kd = testing::DiffKpis(k->body, ref.kpis, false);
  EXPECT_TRUE(kd.empty()) << kd.size() << " KPI differences, first: " << kd[0];
  EXPECT_EQ(testing::Field(k->body, "events_accepted"),
            static_cast<uint64_t>(ref.kpis.events_accepted));
  // How often a line was processed depends on which sends the kills cut, so
  // duplicates and rejections are at least the reference's; and whatever
  // they are, a kill -9 now (nothing in flight) must leave every KPI as it is.
  EXPECT_GE(testing::Field(k->body, "events_duplicate"),
            static_cast<uint64_t>(ref.kpis.events_duplicate));
  EXPECT_GE(testing::Field(k->body, "events_rejected"),
            static_cast<uint64_t>(ref.kpis.events_rejected));
  // The feed, as both consumers saw it: complete once they reach its end
  // (the KPIs above swept every shard as of T; its time changes are written
  // between groups, within milliseconds).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto end = tools::HttpRequest(server.http(), "GET", "/v1/changes?after=end");
  ASSERT_TRUE(end.ok());
  const size_t next_at = end->body.find("\"next\":\"");
  ASSERT_NE(next_at, std::string::npos) << end->body;
  const uint64_t end_cursor = std::stoull(end->body.substr(next_at + 8));
  EXPECT_TRUE(polling.WaitFor(end_cursor, 60)) << "long poll at " << polling.last_cursor();
  EXPECT_TRUE(streaming.WaitFor(end_cursor, 60)) << "stream at " << streaming.last_cursor();
  polling.Stop();
  streaming.Stop();
  const auto polled = polling.changes();
  const auto streamed = streaming.changes();
  const testing::FeedReport report = testing::CheckFeed(polled);
  for (const auto& e : report.errors) ADD_FAILURE() << "long poll: " << e;
  for (const auto& e : testing::CheckFeed(streamed).errors) ADD_FAILURE() << "stream: " << e;
  ASSERT_EQ(polled.size(), streamed.size());
  for (size_t i = 0; i < polled.size(); ++i) {
    ASSERT_EQ(polled[i].cursor, streamed[i].cursor) << i;
    ASSERT_EQ(polled[i].user_id + polled[i].to, streamed[i].user_id + streamed[i].to) << i;
  }
  size_t tier_differences = 0;
  for (const auto& [user, profile] : ref.profiles) {
    auto it = report.last_to.find(user);
    if (it == report.last_to.end() || it->second != profile.tier) {
      if (++tier_differences <= 3) {
        ADD_FAILURE() << user << ": last change to '"
                      << (it == report.last_to.end() ? "(none)" : it->second) << "', tier '"
                      << profile.tier << "'";
      }
    }
  }
  EXPECT_EQ(report.last_to.size(), ref.profiles.size());
  EXPECT_EQ(tier_differences, 0u);
  EXPECT_GT(report.time_changes, 0u) << "the stream made no change by time alone";

  server.Kill();
  ASSERT_TRUE(server.Start());
  auto again = tools::HttpRequest(server.http(), "GET", "/v1/kpis");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->body, k->body);
  EXPECT_EQ(bad, 0u);

  // Recovery figures from the server's log.
  double max_recovery = 0;
  uint64_t max_replayed = 0;
  std::string text = testing::ReadFile(log);
  for (size_t at = 0; (at = text.find("replayed ", at)) != std::string::npos; ++at) {
    unsigned long long n = 0;
    double secs = 0;
    if (std::sscanf(text.c_str() + at, "replayed %llu logged events in %lf s", &n, &secs) == 2) {
      max_recovery = std::max(max_recovery, secs);
      max_replayed = std::max<uint64_t>(max_replayed, n);
    }
  }
  double max_restart = 0;
  for (double s : restart_seconds) max_restart = std::max(max_restart, s);
  std::printf(
      "crash loop: %d kills, %zu lines in %zu batches, %zu sends (%zu failed, %zu re-sends of "
      "acknowledged batches), %zu profile differences, %zu KPI differences; recovery: at most "
      "%llu logged events replayed in %.3f s, restart to ready at most %.3f s\n"
      "change feed: %zu changes (%zu by time) to %zu users; the long-poll consumer "
      "reconnected %llu times, the stream consumer %llu times\n",
      kills, lines.size(), batches.size(), sends, failures, resends, bad, kd.size(),
      static_cast<unsigned long long>(max_replayed), max_recovery, max_restart, polled.size(),
      report.time_changes, report.last_to.size(),
      static_cast<unsigned long long>(polling.reconnects()),
      static_cast<unsigned long long>(streaming.reconnects()));
}

TEST(CrashLoop, EveryAcknowledgedEventSurvivesRandomKills) { RunCrashLoop({}); }

// The same with a tiny id budget, so that ids spill into runs all the time:
// kills land while a run is being written, before its descriptor commits,
// and between checkpoints that must not run meanwhile.
TEST(CrashLoop, SpillingIdsSurviveRandomKills) { RunCrashLoop({"--dedup-memory-mb", "1"}); }

}  // namespace
}  // namespace tierstream
