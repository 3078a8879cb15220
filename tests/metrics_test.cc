// GET /metrics against a real `tierstream serve` and the real Prometheus
// tools: a scrape that promtool finds nothing to fix in, and a Prometheus
// server that scrapes it and answers, through PromQL, the accepted-events
// count /v1/kpis gives. Both need Debian's `prometheus` package (promtool
// and the server), which scripts/test installs: without it they are
// skipped, saying so.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tools/client.h"

extern char** environ;

namespace tierstream {
namespace {

using testing::Field;
using testing::FindProgram;
using testing::ServerProcess;
using testing::Shell;
using testing::ShellRun;
using testing::TempDir;

// A generated month of activity, from `tierstream gen` (with duplicates and
// invalid lines, so that every outcome is counted).
std::vector<std::string> GeneratedLines(int users, int events) {
  const testing::ToolRun gen = testing::RunToolCaptured(
      {"gen", "--users", std::to_string(users), "--days", "30", "--seed", "12", "--events",
       std::to_string(events), "--duplicate-rate", "0.01", "--invalid-rate", "0.005"});
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  return testing::SplitLines(gen.out);
}

// Half of `lines` over TCP, half as one POST: both sources count.
void Ingest(const ServerProcess& server, const std::vector<std::string>& lines) {
  const size_t half = lines.size() / 2;
  auto tcp = tools::TcpSend(server.tcp(), testing::Join(lines, 0, half));
  ASSERT_TRUE(tcp.ok()) << tcp.status().ToString();
  ASSERT_NE(testing::LastLine(*tcp).rfind("{\"error\"", 0), 0u) << *tcp;
  auto http = tools::HttpRequest(server.http(), "POST", "/v1/events",
                                 testing::Join(lines, half, lines.size()));
  ASSERT_TRUE(http.ok()) << http.status().ToString();
  ASSERT_EQ(http->status, 200) << http->body;
}

uint64_t EventsAccepted(const ServerProcess& server) {
  auto kpis = tools::HttpRequest(server.http(), "GET", "/v1/kpis");
  EXPECT_TRUE(kpis.ok() && kpis->status == 200);
  return kpis.ok() ? Field(kpis->body, "events_accepted") : UINT64_MAX;
}

TEST(Metrics, PromtoolFindsNothingToFixInARealScrape) {
  const std::string promtool = FindProgram("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus; scripts/test "
                    "installs it)";
  }
  TempDir dir;
  ServerProcess server(dir.path() + "/data", {"--checkpoint-interval-ms", "100"});
  ASSERT_TRUE(server.ready());
  // Before any event, then after a generated stream and a checkpoint.
  ShellRun empty =
      Shell("curl -sSf http://" + server.http() + "/metrics | " + promtool + " check metrics");
  EXPECT_EQ(empty.exit_code, 0) << empty.output;
  EXPECT_EQ(empty.output, "");
  Ingest(server, GeneratedLines(5000, 60000));
  for (int i = 0; i < 100; ++i) {
    auto m = tools::HttpRequest(server.http(), "GET", "/metrics");
    ASSERT_TRUE(m.ok());
    if (m->body.find("\ntierstream_checkpoint_duration_seconds_count 0\n") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ShellRun run =
      Shell("curl -sSf http://" + server.http() + "/metrics | " + promtool + " check metrics");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "");
  // It was a real scrape, with the ingest in it.
  auto scrape = tools::HttpRequest(server.http(), "GET", "/metrics");
  ASSERT_TRUE(scrape.ok());
  EXPECT_EQ(scrape->status, 200);
  for (const char* series :
       {R"(tierstream_ingest_events_total{source="tcp",outcome="accepted"} )",
        R"(tierstream_ingest_events_total{source="http",outcome="accepted"} )",
        R"(tierstream_ingest_rejections_total{source="tcp",reason="invalid_json"} )",
        R"(tierstream_checkpoint_duration_seconds_count )", R"(tierstream_members )"}) {
    const size_t at = scrape->body.find(series);
    ASSERT_NE(at, std::string::npos) << series;
    EXPECT_NE(scrape->body.substr(at + std::string(series).size(), 2), "0\n") << series;
  }
  // What a scrape costs: the answer's round trip over loopback.
  const auto start = std::chrono::steady_clock::now();
  constexpr int kScrapes = 20;
  for (int i = 0; i < kScrapes; ++i)
    ASSERT_TRUE(tools::HttpRequest(server.http(), "GET", "/metrics").ok());
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
      kScrapes;
  std::printf("scrape: %.2f ms, %zu bytes (5000 users)\n", ms, scrape->body.size());
}

// A Prometheus server on loopback, scraping one target every second;
// killed (and its data removed) with the object.
class PrometheusProcess {
 public:
  PrometheusProcess(const std::string& binary, const std::string& dir, const std::string& target)
      : address_("127.0.0.1:" + std::to_string(testing::FreePort())),
        log_(dir + "/prometheus.log") {
    const std::string config = dir + "/prometheus.yml";
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  scrape_timeout: 1s\n"
                             "scrape_configs:\n"
                             "  - job_name: tierstream\n"
                             "    static_configs:\n"
                             "      - targets: ['"
                          << target << "']\n";
    std::vector<std::string> args = {binary, "--config.file=" + config,
                                     "--storage.tsdb.path=" + dir + "/tsdb",
                                     "--web.listen-address=" + address_, "--log.level=warn"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~PrometheusProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  bool started() const { return pid_ > 0; }
  const std::string& address() const { return address_; }
  std::string log() const { return testing::ReadFile(log_); }

  // The value of an instant PromQL query that yields one sample; nullopt
  // while it yields none (no scrape yet) or the server is not up.
  std::optional<std::string> Query(const std::string& promql) const {
    auto r = tools::HttpRequest(address_, "GET", "/api/v1/query?query=" + tools::UrlEncode(promql),
                                {}, 5);
    if (!r.ok() || r->status != 200) return std::nullopt;
    // {"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[<t>,"<v>"]}]}}
    const size_t value = r->body.find("\"value\":[");
    if (value == std::string::npos) return std::nullopt;
    const size_t open = r->body.find(",\"", value);
    const size_t close = r->body.find('"', open + 2);
    if (open == std::string::npos || close == std::string::npos) return std::nullopt;
    return r->body.substr(open + 2, close - open - 2);
  }

 private:
  std::string address_;
  std::string log_;
  pid_t pid_ = -1;
};

TEST(Metrics, APrometheusServerScrapesTheAcceptedCountOfTheKpis) {
  const std::string binary = FindProgram("prometheus");
  if (binary.empty()) {
    GTEST_SKIP() << "prometheus is not installed (Debian package prometheus; scripts/test "
                    "installs it)";
  }
  TempDir dir;
  ServerProcess server(dir.path() + "/data");
  ASSERT_TRUE(server.ready());
  Ingest(server, GeneratedLines(3000, 30000));
  const uint64_t accepted = EventsAccepted(server);
  ASSERT_GT(accepted, 29000u);
  PrometheusProcess prometheus(binary, dir.path(), server.http());
  ASSERT_TRUE(prometheus.started());
  const std::string promql = R"(sum(tierstream_ingest_events_total{outcome="accepted"}))";
  std::optional<std::string> value;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!(value = prometheus.Query(promql)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(value.has_value()) << "no scrape within 60 s; prometheus said:\n" << prometheus.log();
  EXPECT_EQ(*value, std::to_string(accepted));
  // The scrape itself was healthy.
  EXPECT_EQ(prometheus.Query(R"(up{job="tierstream"})").value_or("none"), "1");
}

}  // namespace
}  // namespace tierstream
