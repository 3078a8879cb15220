// `tierstream send` against a real server: its exit status tells a script
// whether every line was taken (0), some were rejected (2) or ingest failed
// (1), as documented in `send --help` and the README.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "app/commands.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace tierstream {
namespace {

std::string WriteFile(const testing::TempDir& dir, const std::string& name,
                      const std::string& text) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const char kGood[] =
    R"({"event_id":"s1","type":"share","user_id":"u1","ts":1763971200000})" "\n"
    R"({"event_id":"s2","type":"share","user_id":"u2","ts":1763971200000})" "\n";

TEST(Send, ExitStatusSaysWhetherEveryLineWasTaken) {
  testing::TempDir data, files;
  testing::ServerProcess server(data.path() + "/data");
  ASSERT_TRUE(server.ready());
  const std::string good = WriteFile(files, "good.ndjson", kGood);
  const std::string bad = WriteFile(files, "bad.ndjson", std::string(kGood) + "not json\n");
  EXPECT_EQ(testing::RunTool({"send", good, "--tcp", server.tcp()}), app::kSendOk);
  // Re-sent: duplicates are taken too.
  EXPECT_EQ(testing::RunTool({"send", good, "--tcp", server.tcp()}), app::kSendOk);
  EXPECT_EQ(testing::RunTool({"send", bad, "--tcp", server.tcp()}), app::kSendSomeRejected);
  EXPECT_EQ(testing::RunTool({"send", good, bad, "--tcp", server.tcp()}), app::kSendSomeRejected);
  EXPECT_EQ(testing::RunTool({"send", files.path() + "/missing", "--tcp", server.tcp()}),
            app::kSendFailed);
}

TEST(Send, ExitStatusIsOneWhenIngestIsRefused) {
  testing::TempDir data, files;
  // Free space is always "below the watermark": every batch is refused.
  testing::ServerProcess server(data.path() + "/data", {"--min-free-mb", "1000000000"});
  ASSERT_TRUE(server.ready());
  const std::string good = WriteFile(files, "good.ndjson", kGood);
  EXPECT_EQ(testing::RunTool({"send", good, "--tcp", server.tcp()}), app::kSendFailed);
}

}  // namespace
}  // namespace tierstream
