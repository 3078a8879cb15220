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
#include <vector>

#include "app/client.h"
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

// Regression (issue 10): an evicted user with a pending tier check kept her
// id twice in memory (a std::string in the check's day list and another as
// the key of her due day) — ~470 bytes per user with 128-byte ids: 300k such
// users held 157 MB after a restart with 1,000 resident, beyond
// --max-resident-users and --warm-memory-mb. Checks are kept by the user's
// 64-bit hash now, and the store finds her id again by it.
TEST(Hostile, PendingTierChecksOfEvictedUsersCostBoundedMemory) {
  testing::TempDir dir;
  // Event ids spill to disk at once (1.6 bytes each in memory instead of
  // ~80): what is measured is the users.
  const std::vector<std::string> flags = {"--max-resident-users", "1000", "--dedup-memory-mb", "1"};
  testing::ServerProcess server(dir.path() + "/data", flags);
  ASSERT_TRUE(server.ready());
  ASSERT_TRUE(app::HttpRequest(server.http(), "GET", "/v1/kpis").ok());
  const long empty_kb = RssKb(server.pid());
  // Every user joins (a member: her tier changes 7 and 30 days on by time
  // alone, so she has a pending check), with an id of the longest kind.
  constexpr size_t kUsers = 300'000, kPerPost = 10'000;
  const int64_t t0 = 1763971200000;  // 2025-11-24
  for (size_t first = 0; first < kUsers; first += kPerPost) {
    std::string body;
    for (size_t i = first; i < first + kPerPost; ++i) {
      std::string id = "u" + std::to_string(i);
      id.resize(128, '.');
      body += R"({"event_id":"e)" + std::to_string(i) + R"(","type":"join","user_id":")" + id +
              R"(","ts":)" + std::to_string(t0 + static_cast<int64_t>(i) * 100) + "}\n";
    }
    auto r = app::HttpRequest(server.http(), "POST", "/v1/events", body);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  // A restart: 1,000 users come back decoded, the others only as their
  // pending checks.
  ASSERT_EQ(server.Terminate(), 0);
  ASSERT_TRUE(server.Start());
  auto kpis = app::HttpRequest(server.http(), "GET", "/v1/kpis");
  ASSERT_TRUE(kpis.ok());
  EXPECT_EQ(testing::Field(kpis->body, "members"), kUsers) << kpis->body;
  const long restarted_kb = RssKb(server.pid());
  const double per_user = static_cast<double>(restarted_kb - empty_kb) * 1024.0 / kUsers;
  std::printf(
      "%zu evicted users with 128-byte ids after a restart: RSS %ld -> %ld kB, %.0f B/user\n",
      kUsers, empty_kb, restarted_kb, per_user);
  EXPECT_LT(per_user, 120.0) << "RSS grew from " << empty_kb << " to " << restarted_kb << " kB";
  // And their checks still fire: 31 days on, every one of them is dormant.
  auto tick = app::HttpRequest(server.http(), "POST", "/v1/events",
                               R"({"event_id":"tick","type":"message","user_id":"ticker","ts":)" +
                                   std::to_string(t0 + 31 * 86'400'000LL) + "}\n");
  ASSERT_TRUE(tick.ok());
  ASSERT_EQ(tick->status, 200) << tick->body;
  kpis = app::HttpRequest(server.http(), "GET", "/v1/kpis");
  ASSERT_TRUE(kpis.ok());
  EXPECT_EQ(testing::Field(kpis->body, "dormant"), kUsers) << kpis->body;
}

}  // namespace
}  // namespace tierstream
