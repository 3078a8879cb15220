// The bulk case of exactness, as the issue found it: the 1M-line file of
// `gen --users 100000 --days 30 --events 1000000` streamed once over one TCP
// connection into a fresh server with default settings. About a minute: the
// dev suite runs it (label bulk), the sanitizer runs do not.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tools/client.h"

namespace tierstream {
namespace {

using testing::Field;
using testing::ServerProcess;
using testing::TempDir;

// Regression: a 1M-line file streamed once over one TCP connection accepted
// ~990,100 events where the batch evaluator accepts 989,798. The connection's
// batches were handed to the shard queues from whichever io thread ran it, and
// the queues keep order per thread only: under backpressure a batch was
// overtaken by hundreds of thousands of later lines, met a T many days ahead,
// and the originals of its retried events had expired, so they counted twice.
// It takes the in-flight bound (1M events) to show: the issue's own file.
TEST(ExactnessBulk, OneMillionLinesOverOneConnectionCountEveryEventOnce) {
  tools::GenOptions g;  // gen --users 100000 --days 30 --events 1000000
  g.users = 100000;
  g.days = 30;
  g.events = 1000000;
  g.seed = 1;
  const auto lines = testing::GenerateLines(g);
  const testing::Reference ref = testing::Evaluate(lines);
  TempDir dir;
  const std::string file = dir.path() + "/events.ndjson";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    for (const auto& line : lines) {
      std::fputs(line.c_str(), f);
      std::fputc('\n', f);
    }
    ASSERT_EQ(std::fclose(f), 0);
  }
  ServerProcess server(dir.path() + "/data");
  ASSERT_TRUE(server.ready());
  auto r = tools::TcpSend(server.tcp(), testing::ReadFile(file));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string summary = testing::LastLine(*r);
  EXPECT_EQ(Field(summary, "accepted"), static_cast<uint64_t>(ref.kpis.events_accepted)) << summary;
  EXPECT_EQ(Field(summary, "duplicates"), static_cast<uint64_t>(ref.kpis.events_duplicate));
  auto h = tools::HttpRequest(server.http(), "GET", "/healthz");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(Field(h->body, "events_beyond_horizon"), 0u) << h->body;
  // Every profile and KPI, counters included, against the batch evaluator.
  ASSERT_EQ(server.Terminate(), 0);
  EXPECT_EQ(testing::RunTool({"verify", "--data", dir.path() + "/data", file}), 0);
}

}  // namespace
}  // namespace tierstream
