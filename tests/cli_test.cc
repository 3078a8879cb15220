// The command line as a new user meets it: `tierstream` run as a process,
// its exit codes and what it prints (help, errors, summaries, progress).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/process_util.h"
#include "tests/test_util.h"

namespace tierstream {
namespace {

using testing::RunToolCaptured;
using testing::ServerProcess;
using testing::TempDir;
using testing::ToolRun;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

bool Contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Three events of one member: a join and two orders, 129.50 + 288.35 yuan.
const char kEvents[] =
    R"({"event_id":"e1","type":"join","user_id":"u1","ts":1763971200000,"group_id":"g1"})"
    "\n"
    R"({"event_id":"e2","type":"order","user_id":"u1","ts":1763975000000,"order_id":"o1","amount":129.5})"
    "\n"
    R"({"event_id":"e3","type":"order","user_id":"u1","ts":1763976000000,"order_id":"o2","amount":288.35})"
    "\n";

TEST(Cli, PrintsItsVersion) {
  ToolRun r = RunToolCaptured({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string("tierstream ") + TIERSTREAM_VERSION + "\n");
}

TEST(Cli, NamesAnUnknownCommandAndListsTheCommands) {
  ToolRun r = RunToolCaptured({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "unknown command 'frobnicate'")) << r.err;
  for (const char* command :
       {"serve", "replay", "verify", "gen", "load", "send", "user", "explain", "kpis"}) {
    EXPECT_TRUE(Contains(r.err, command)) << command << " not listed in: " << r.err;
  }
  EXPECT_TRUE(r.out.empty()) << r.out;
  // A misspelt command with options behind it is still named.
  r = RunToolCaptured({"replya", "--data", "/nonexistent", "x.ndjson"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "unknown command 'replya'")) << r.err;
}

TEST(Cli, GenRejectsRatesOutsideZeroToOneAndEmptyStreams) {
  const std::vector<std::vector<std::string>> bad = {{"--duplicate-rate", "1.5"},
                                                     {"--disorder-rate", "-0.1"},
                                                     {"--invalid-rate", "2"},
                                                     {"--days", "0"},
                                                     {"--days", "-3"},
                                                     {"--users", "0"}};
  for (const auto& flag : bad) {
    ToolRun r = RunToolCaptured({"gen", flag[0], flag[1]});
    EXPECT_NE(r.exit_code, 0) << flag[0] << " " << flag[1];
    EXPECT_TRUE(Contains(r.err, flag[0])) << flag[0] << " " << flag[1] << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << flag[0] << " " << flag[1] << " wrote events";
  }
  ToolRun ok = RunToolCaptured(
      {"gen", "--users", "5", "--days", "1", "--duplicate-rate", "1", "--invalid-rate", "0"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_FALSE(ok.out.empty());
}

TEST(Cli, ReplayHelpListsOnlyWhatReplayUses) {
  ToolRun replay = RunToolCaptured({"replay", "--help"});
  EXPECT_EQ(replay.exit_code, 0);
  ToolRun serve = RunToolCaptured({"serve", "--help"});
  EXPECT_EQ(serve.exit_code, 0);
  for (const char* flag : {"--fsync", "--checkpoint-interval-ms", "--snapshot-slice"}) {
    EXPECT_FALSE(Contains(replay.out, flag)) << flag << " in: " << replay.out;
    EXPECT_TRUE(Contains(serve.out, flag)) << flag << " not in: " << serve.out;
  }
  for (const char* flag : {"--data", "--shards", "--tz", "--config", "--max-resident-users"}) {
    EXPECT_TRUE(Contains(replay.out, flag)) << flag << " not in: " << replay.out;
  }
}

TEST(Cli, ReplaySummaryPointsAtRejectedLinesAndLeavesOutServerLines) {
  TempDir dir;
  const std::string events = dir.path() + "/events.ndjson";
  WriteFile(events, std::string(kEvents) + "not json\n" +
                        R"({"event_id":"e9","type":"order","user_id":"u2","ts":1763976000000})"
                        "\n");
  const std::string data = dir.path() + "/data";
  ToolRun r = RunToolCaptured({"replay", "--data", data, "--shards", "2", events});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, R"("accepted":3,"duplicates":0,"rejected":2)")) << r.out;
  EXPECT_FALSE(Contains(r.err, "recovered")) << r.err;
  EXPECT_TRUE(Contains(r.err, "2 lines rejected")) << r.err;
  EXPECT_TRUE(Contains(r.err, data + "/rejected.ndjson")) << r.err;
  // Nothing rejected: nothing to point at.
  WriteFile(events, kEvents);
  r = RunToolCaptured({"replay", "--data", dir.path() + "/data2", "--shards", "2", events});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(Contains(r.err, "rejected")) << r.err;
}

TEST(Cli, ReplayChecksEveryFileBeforeLoadingAny) {
  TempDir dir;
  const std::string events = dir.path() + "/events.ndjson";
  WriteFile(events, kEvents);
  const std::string data = dir.path() + "/data";
  ToolRun r = RunToolCaptured({"replay", "--data", data, events, dir.path() + "/typo.ndjson"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "cannot read " + dir.path() + "/typo.ndjson")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(data)) << "the first file was loaded";
  r = RunToolCaptured({"verify", "--data", data, dir.path() + "/typo.ndjson"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "cannot read " + dir.path() + "/typo.ndjson")) << r.err;
}

TEST(Cli, ReplayAndVerifyShowProgressOnATerminalOnly) {
  TempDir dir;
  const std::string events = dir.path() + "/events.ndjson";
  WriteFile(events, kEvents);
  const std::string data = dir.path() + "/data";
  ToolRun tty = RunToolCaptured({"replay", "--data", data, "--shards", "2", events}, true);
  ASSERT_EQ(tty.exit_code, 0) << tty.err;
  EXPECT_TRUE(Contains(tty.err, "\r")) << tty.err;
  EXPECT_TRUE(Contains(tty.err, "3 lines")) << tty.err;
  EXPECT_TRUE(Contains(tty.err, "events/s")) << tty.err;
  EXPECT_TRUE(Contains(tty.err, "100%")) << tty.err;
  tty = RunToolCaptured({"verify", "--data", data, events}, true);
  ASSERT_EQ(tty.exit_code, 0) << tty.out << tty.err;
  EXPECT_TRUE(Contains(tty.err, "\r")) << tty.err;
  EXPECT_TRUE(Contains(tty.err, "100%")) << tty.err;
  EXPECT_TRUE(Contains(tty.err, "events/s")) << tty.err;
  // Not a terminal (a log file, a pipe): no progress.
  ToolRun quiet =
      RunToolCaptured({"replay", "--data", dir.path() + "/data2", "--shards", "2", events});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_FALSE(Contains(quiet.err, "events/s")) << quiet.err;
  EXPECT_FALSE(Contains(quiet.err, "\r")) << quiet.err;
  quiet = RunToolCaptured({"verify", "--data", data, events});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out << quiet.err;
  EXPECT_FALSE(Contains(quiet.err, "events/s")) << quiet.err;
  EXPECT_FALSE(Contains(quiet.err, "\r")) << quiet.err;
}

TEST(Cli, VerifyPrintsMoneyInYuanWithWhatItGotAndWanted) {
  TempDir dir;
  const std::string events = dir.path() + "/events.ndjson";
  WriteFile(events, kEvents);
  const std::string data = dir.path() + "/data";
  ASSERT_EQ(RunToolCaptured({"replay", "--data", data, "--shards", "2", events}).exit_code, 0);
  // The data dir holds 417.85 yuan of orders; the file claims a refund too.
  const std::string other = dir.path() + "/other.ndjson";
  WriteFile(
      other,
      std::string(kEvents) +
          R"({"event_id":"e4","type":"refund","user_id":"u1","ts":1763977000000,"order_id":"o2","amount":731.63})"
          "\n");
  ToolRun r = RunToolCaptured({"verify", "--data", data, other});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "u1.spend_total: got 417.85 want -313.78")) << r.out;
  EXPECT_TRUE(Contains(r.out, "u1.spend_30d: got 417.85 want -313.78")) << r.out;
  EXPECT_TRUE(Contains(r.out, "kpi refunds_30d: got 0.00 want 731.63")) << r.out;
}

TEST(Cli, VerifyAndReplaySayWhenAServerHoldsTheDataDir) {
  TempDir dir;
  const std::string events = dir.path() + "/events.ndjson";
  WriteFile(events, kEvents);
  const std::string data = dir.path() + "/data";
  ServerProcess server(data);
  ASSERT_TRUE(server.ready());
  const std::string want = "data dir " + data +
                           " is in use by another tierstream process (a running server?); "
                           "stop it first";
  ToolRun r = RunToolCaptured({"verify", "--data", data, events});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, want)) << r.err;
  EXPECT_FALSE(Contains(r.err, "LOCK")) << r.err;
  r = RunToolCaptured({"replay", "--data", data, events});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, want)) << r.err;
  EXPECT_FALSE(Contains(r.err, "LOCK")) << r.err;
}

TEST(Cli, ExplainPrintsWhatTheServerExplains) {
  TempDir dir;
  const std::string events = dir.path() + "/events.ndjson";
  WriteFile(events, kEvents);
  const std::string token = dir.path() + "/token";
  WriteFile(token, "explain-test-token-0123456789\n");
  ServerProcess server(dir.path() + "/data", {"--token-file", token});
  ASSERT_TRUE(server.ready());
  ASSERT_EQ(
      RunToolCaptured({"send", events, "--tcp", server.tcp(), "--token-file", token}).exit_code, 0);
  ToolRun r = RunToolCaptured({"explain", "u1", "--http", server.http(), "--token-file", token});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Joined today, two orders (417.85): new, and 82.15 and two orders short
  // of high_value.
  EXPECT_EQ(r.out.rfind(R"({"user_id":"u1","as_of":1763976000000,"tier":"new","rules":[)", 0), 0u)
      << r.out;
  EXPECT_TRUE(
      Contains(r.out, R"("to_reach":{"high_value":{"join":false,"spend_30d":82.15,"orders":2}})"))
      << r.out;
  EXPECT_EQ(r.out.back(), '\n');
  r = RunToolCaptured({"explain", "nobody", "--http", server.http(), "--token-file", token});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "{\"error\":\"unknown user\"}\n");
  r = RunToolCaptured({"explain", "u1", "--http", server.http()});  // no token: 401
  EXPECT_EQ(r.exit_code, 1);
  r = RunToolCaptured({"explain", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out, "--http") && Contains(r.out, "--token-file")) << r.out;
  EXPECT_FALSE(Contains(r.out, "--tcp")) << r.out;
}

TEST(Cli, ServerLogLinesCarryATimestampAndLevel) {
  TempDir dir;
  const std::string log = dir.path() + "/server.log";
  {
    ServerProcess server(dir.path() + "/data", {}, log);
    ASSERT_TRUE(server.ready());
    EXPECT_EQ(server.Terminate(), 0);
  }
  const auto lines = testing::SplitLines(testing::ReadFile(log));
  ASSERT_FALSE(lines.empty());
  bool saw_recovered = false;
  for (const std::string& line : lines) {
    // 2025-11-24T08:00:00.123Z INFO tierstream: ...
    ASSERT_GE(line.size(), 25u) << line;
    EXPECT_EQ(line[4], '-') << line;
    EXPECT_EQ(line[10], 'T') << line;
    EXPECT_EQ(line[19], '.') << line;
    EXPECT_EQ(line[23], 'Z') << line;
    EXPECT_TRUE(Contains(line, " tierstream: ")) << line;
    saw_recovered = saw_recovered || Contains(line, " INFO tierstream: recovered 0 users");
  }
  EXPECT_TRUE(saw_recovered) << testing::ReadFile(log);
}

}  // namespace
}  // namespace tierstream
