// What a hostile or broken client can cost a real `tierstream serve`,
// measured on the server process (label memory: not under sanitizers).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "app/server.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace tierstream {
namespace {

long RssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

int Connect(const std::string& address) {
  std::string host;
  uint16_t port = 0;
  if (!app::SplitHostPort(address, &host, &port)) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until an ack line says `lines` lines are durable; false on EOF or
// after 30 s of silence.
bool WaitForDurable(int fd, uint64_t lines, std::string* buffered) {
  const std::string want = "\"durable_lines\":" + std::to_string(lines) + ",";
  for (;;) {
    if (buffered->find(want) != std::string::npos) {
      buffered->erase(0, buffered->rfind('\n') + 1);
      return true;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30'000) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffered->append(chunk, static_cast<size_t>(n));
  }
}

// Regression: one TCP connection's error list grew without bound — each
// batch kept up to 100 errors and the session appended them all (cut to 100
// only in the final summary): `x` lines in small writes grew the server's RSS
// by ~26 MB/s. A connection keeps at most the first 100.
TEST(Hostile, RejectedLinesOfOneConnectionCostBoundedMemory) {
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() + "/data");
  ASSERT_TRUE(server.ready());
  const int fd = Connect(server.tcp());
  ASSERT_GE(fd, 0);
  std::string chunk;
  for (int i = 0; i < 200; ++i) chunk += "x\n";  // 200 rejected lines, 100 errors listed
  std::string buffered;
  uint64_t sent = 0;
  auto send_round = [&] {
    ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    sent += 200;
    // One batch per write: wait until it is taken before the next.
    ASSERT_TRUE(WaitForDurable(fd, sent, &buffered)) << sent;
  };
  for (int i = 0; i < 200; ++i) send_round();  // warm up the allocator
  const long before_kb = RssKb(server.pid());
  for (int i = 0; i < 3000; ++i) send_round();  // 300k errors if all were kept (~30 MB)
  const long after_kb = RssKb(server.pid());
  ::shutdown(fd, SHUT_WR);
  std::string rest;
  char c[4096];
  for (ssize_t n; (n = ::read(fd, c, sizeof c)) > 0;) rest.append(c, static_cast<size_t>(n));
  ::close(fd);
  const std::string summary = testing::LastLine(buffered + rest);
  EXPECT_EQ(testing::Field(summary, "rejected"), sent) << summary;
  EXPECT_NE(summary.find(R"({"line":100,)"), std::string::npos) << summary.substr(0, 300);
  EXPECT_EQ(summary.find(R"({"line":101,)"), std::string::npos);
  std::printf("rejected lines of one connection: RSS %ld -> %ld kB over 600k lines\n", before_kb,
              after_kb);
  EXPECT_LT(after_kb - before_kb, 8 * 1024) << "RSS grew from " << before_kb << " to " << after_kb
                                            << " kB over 600k rejected lines";
}

}  // namespace
}  // namespace tierstream
