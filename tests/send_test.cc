// `tierstream send` against a real server: its exit status tells a script
// whether every line was taken (0), some were rejected (2) or ingest failed
// (1), as documented in `send --help` and the README.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "app/commands.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

extern char** environ;

namespace tierstream {
namespace {

std::string WriteFile(const testing::TempDir& dir, const std::string& name,
                      const std::string& text) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const char kGood[] = R"({"event_id":"s1","type":"share","user_id":"u1","ts":1763971200000})"
                     "\n"
                     R"({"event_id":"s2","type":"share","user_id":"u2","ts":1763971200000})"
                     "\n";

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

// Runs `tierstream ARGS...` with stdout discarded and stderr on a fresh
// pseudo-terminal (`tty`) or a pipe; returns what it wrote to stderr.
std::string StderrOf(const std::vector<std::string>& args, bool tty) {
  int read_fd = -1, write_fd = -1;
  if (tty) {
    if (::openpty(&read_fd, &write_fd, nullptr, nullptr, nullptr) != 0) return "openpty failed";
  } else {
    int fds[2];
    if (::pipe(fds) != 0) return "pipe failed";
    read_fd = fds[0];
    write_fd = fds[1];
  }
  std::vector<std::string> all = {testing::TierstreamBinary()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_fd, 2);
  posix_spawn_file_actions_addclose(&actions, read_fd);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(write_fd);
  std::string out;
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    // A pty's reader gets EIO once the child is gone; a pipe's gets EOF.
    while ((n = ::read(read_fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::waitpid(pid, nullptr, 0);
  }
  ::close(read_fd);
  return out;
}

// On a terminal, send shows progress from the acks on one line rewritten
// with \r; into a pipe or a file it writes nothing to stderr.
TEST(Send, ShowsProgressOnlyOnATerminal) {
  testing::TempDir data, files;
  testing::ServerProcess server(data.path() + "/data");
  ASSERT_TRUE(server.ready());
  tools::GenOptions gen;
  gen.users = 5000;
  gen.days = 10;
  gen.seed = 4;
  gen.events = 50000;  // several batches: acks come while the later ones are processed
  const auto lines = testing::GenerateLines(gen);
  const std::string path = WriteFile(files, "events.ndjson", testing::Join(lines, 0, lines.size()));
  const std::string on_tty = StderrOf({"send", path, "--tcp", server.tcp()}, true);
  EXPECT_NE(on_tty.find("lines durable"), std::string::npos) << on_tty;
  EXPECT_NE(on_tty.find('\r'), std::string::npos) << on_tty;
  EXPECT_EQ(on_tty.find('\n'), std::string::npos) << on_tty;
  EXPECT_EQ(StderrOf({"send", path, "--tcp", server.tcp()}, false), "");
}

}  // namespace
}  // namespace tierstream
