// A store that cannot write — RocksDB unable to open its next file — refuses
// ingest while it lasts and takes it again by itself afterwards, on a real
// `tierstream serve` process.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/host_port.h"
#include "server/server.h"
#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tools/client.h"

namespace tierstream {
namespace {

using Clock = std::chrono::steady_clock;
using testing::Field;
using testing::ServerProcess;
using testing::TempDir;

// One HTTP/1.1 keep-alive connection, opened while descriptors are plenty:
// the server cannot accept a new one while it has none left.
class KeepAlive {
 public:
  explicit KeepAlive(const std::string& address) {
    std::string host;
    uint16_t port = 0;
    if (!SplitHostPort(address, &host, &port)) return;
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~KeepAlive() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  // Sends one request and reads its answer (Content-Length framed);
  // status 0 when the connection failed.
  tools::HttpResult Request(const std::string& method, const std::string& target,
                            const std::string& body = {}) {
    tools::HttpResult result;
    std::string out = method + " " + target + " HTTP/1.1\r\nHost: test\r\n";
    if (method == "POST") out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n" + body;
    for (size_t sent = 0; sent < out.size();) {
      const ssize_t n = ::write(fd_, out.data() + sent, out.size() - sent);
      if (n <= 0) return result;
      sent += static_cast<size_t>(n);
    }
    std::string in;
    size_t header_end = std::string::npos, length = 0;
    for (;;) {
      if (header_end == std::string::npos) {
        header_end = in.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          const size_t at = in.find("Content-Length: ");
          if (at == std::string::npos || at > header_end) return result;
          length = std::strtoull(in.c_str() + at + 16, nullptr, 10);
        }
      }
      if (header_end != std::string::npos && in.size() >= header_end + 4 + length) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 30'000) <= 0) return result;
      char chunk[65536];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return result;
      in.append(chunk, static_cast<size_t>(n));
    }
    result.status = std::atoi(in.c_str() + 9);
    result.body = in.substr(header_end + 4, length);
    return result;
  }

 private:
  int fd_ = -1;
};

// The lowest descriptor number `pid` has free: with its soft limit there, it
// can open nothing (the limit bounds numbers, not the count).
rlim_t LowestFreeFd(pid_t pid) {
  std::set<long> used;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    used.insert(std::strtol(e.path().filename().c_str(), nullptr, 10));
  }
  rlim_t fd = 0;
  while (used.count(static_cast<long>(fd)) > 0) ++fd;
  return fd;
}

// Join events of maximal ids (128 bytes each): the log holds each of them
// twice (the join, and the referrer's credit on her shard), about 800 bytes
// per line, so that RocksDB's 64 MB memtable of the journal fills, and asks
// for a new WAL file, after about 85,000 lines.
std::vector<std::string> MakeChunks(size_t chunks, size_t lines_per_chunk) {
  auto id = [](char prefix, size_t i) {
    std::string s = std::string(1, prefix) + std::to_string(i);
    s.resize(128, 'x');
    return s;
  };
  constexpr size_t kUsers = 500;
  const int64_t t0 = 1763971200000;  // 2025-11-24
  std::vector<std::string> out;
  for (size_t c = 0; c < chunks; ++c) {
    std::string text;
    for (size_t j = 0; j < lines_per_chunk; ++j) {
      const size_t i = c * lines_per_chunk + j;
      text += R"({"event_id":")" + id('e', i) + R"(","type":"join","user_id":")" +
              id('u', i % kUsers) + R"(","ts":)" + std::to_string(t0 + static_cast<int64_t>(i)) +
              R"(,"referrer_id":")" + id('u', (i * 7 + 3) % kUsers) + "\"}\n";
    }
    out.push_back(std::move(text));
  }
  return out;
}

// Regression (issue 10): a burst of idle connections took every descriptor
// under `ulimit -n 1024`, the journal could not create its next WAL file
// ("Too many open files"), and RocksDB refused every write after it — a
// fatal background error that DB::Resume() does not clear. Once the
// connections were gone every POST still got 503 until a restart. Here the
// test takes the descriptors away itself (prlimit on the server), then gives
// them back: ingest must come back by itself within seconds, and every
// acknowledged event count exactly once, before and after a kill -9.
TEST(StoreFailure, AFailedWriteRefusesIngestUntilTheStoreRecoversByItself) {
#if defined(__SANITIZE_ADDRESS__)
  // The asan preset has UBSan too, whose vptr check probes memory through a
  // pipe: with no descriptor left it reports a false "invalid vptr" (in
  // Boost.Beast) and aborts the server. TSan and dev builds run it.
  GTEST_SKIP() << "UBSan's vptr check needs file descriptors";
#endif
  TempDir dir;
  ServerProcess server(dir.path() + "/data");
  ASSERT_TRUE(server.ready());
  KeepAlive conn(server.http());
  ASSERT_TRUE(conn.ok());
  ASSERT_EQ(conn.Request("GET", "/healthz").status, 200);

  constexpr size_t kLinesPerChunk = 2000;
  const std::vector<std::string> chunks = MakeChunks(60, kLinesPerChunk);
  const pid_t pid = server.pid();
  rlimit saved{};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, nullptr, &saved), 0);
  rlimit squeezed = saved;
  squeezed.rlim_cur = LowestFreeFd(pid);
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &squeezed, nullptr), 0);

  std::vector<size_t> acknowledged;  // chunks answered 200, in order
  uint64_t applied_of_refused = 0;   // "accepted" of 503 answers: those events count already
  // "duplicates" of 503 answers: counted too, by the shard parts that were
  // made durable (a re-send during recovery can find its first slice's ids
  // already taken and count them, then be refused in its second).
  uint64_t duplicates_of_refused = 0;
  size_t next = 0;
  size_t refused = SIZE_MAX;
  for (; next < chunks.size(); ++next) {
    const tools::HttpResult r = conn.Request("POST", "/v1/events", chunks[next]);
    if (r.status == 503) {
      refused = next;
      applied_of_refused += Field(r.body, "accepted");
      duplicates_of_refused += Field(r.body, "duplicates");
      break;
    }
    ASSERT_EQ(r.status, 200) << r.body;
    acknowledged.push_back(next);
  }
  ASSERT_NE(refused, SIZE_MAX) << "no write failed without file descriptors";
  std::printf("the journal's write failed at chunk %zu of %zu lines\n", refused, kLinesPerChunk);
  ++next;
  // While it lasts: refused, and the probes say why.
  tools::HttpResult again = conn.Request("POST", "/v1/events", chunks[refused]);
  EXPECT_EQ(again.status, 503) << again.body;
  applied_of_refused += Field(again.body, "accepted");
  duplicates_of_refused += Field(again.body, "duplicates");
  const tools::HttpResult health = conn.Request("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_NE(health.body.find(R"("status":"degraded")"), std::string::npos) << health.body;
  EXPECT_NE(health.body.find("Too many open files"), std::string::npos) << health.body;
  const tools::HttpResult ready = conn.Request("GET", "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;

  // The descriptors come back: so must ingest, with no restart.
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &saved, nullptr), 0);
  const auto back = Clock::now();
  bool resumed = false;
  while (Clock::now() - back < std::chrono::seconds(30)) {
    const tools::HttpResult r = conn.Request("POST", "/v1/events", chunks[refused]);
    if (r.status == 200) {
      resumed = true;
      break;
    }
    ASSERT_EQ(r.status, 503) << r.body;
    applied_of_refused += Field(r.body, "accepted");
    duplicates_of_refused += Field(r.body, "duplicates");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - back).count();
  ASSERT_TRUE(resumed) << "ingest still refused 30 s after the descriptors came back";
  std::printf("ingest resumed %.2f s after the descriptors came back\n", seconds);
  // About 0.7 s in a dev build: at most 1 s of backoff, then the journal is
  // reopened (its 64 MB memtable replayed from the WAL: ~6 s under TSan).
  EXPECT_LT(seconds, 15.0);
  acknowledged.push_back(refused);
  EXPECT_NE(conn.Request("GET", "/healthz").body.find(R"("status":"ok")"), std::string::npos);
  EXPECT_EQ(conn.Request("GET", "/readyz").status, 200);
  for (; next < chunks.size(); ++next) {
    const tools::HttpResult r = conn.Request("POST", "/v1/events", chunks[next]);
    ASSERT_EQ(r.status, 200) << r.body;
    acknowledged.push_back(next);
  }

  // Every acknowledged event once; the part of a refused batch that one
  // shard had made durable before the other failed was counted then, and
  // its re-sending as duplicates.
  std::vector<std::string> lines;
  for (size_t c : acknowledged) {
    for (std::string& line : testing::SplitLines(chunks[c])) lines.push_back(std::move(line));
  }
  const testing::Reference ref = testing::Evaluate(lines);
  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    auto kpis = tools::HttpRequest(server.http(), "GET", "/v1/kpis");
    ASSERT_TRUE(kpis.ok());
    for (const std::string& d : testing::DiffKpis(kpis->body, ref.kpis, false)) ADD_FAILURE() << d;
    EXPECT_EQ(Field(kpis->body, "events_accepted"),
              static_cast<uint64_t>(ref.kpis.events_accepted));
    EXPECT_EQ(Field(kpis->body, "events_duplicate"),
              static_cast<uint64_t>(ref.kpis.events_duplicate) + applied_of_refused +
                  duplicates_of_refused);
    EXPECT_EQ(testing::ProfileDifferences(server.http(), ref), 0u);
  };
  check("after the store recovered");
  server.Kill();
  ASSERT_TRUE(server.Start());
  check("after kill -9 and a restart");
}

}  // namespace
}  // namespace tierstream
