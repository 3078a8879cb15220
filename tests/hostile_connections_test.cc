// What peers without the token can do to a `tierstream serve --token-file`:
// hold connection slots, stay silent, trickle a header. They must not lock
// clients with the token out, must be gone by the authentication deadline,
// and cost little memory while they last. And a SIGTERM leaves open
// connections the configured grace to get their answers.
// (Label hostile: the dev suite runs it; sanitizer runs do not, since the
// memory bounds are the server's RSS.)
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tools/client.h"

namespace tierstream {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kToken[] = "s3cret-token-for-tests";

std::string WriteTokenFile(const testing::TempDir& dir) {
  const std::string path = dir.path() + "/token";
  std::ofstream(path) << kToken << "\n";
  return path;
}

// Reads until the peer closes or `timeout` passes; returns what was read
// and sets *closed.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout, bool* closed) {
  std::string got;
  const auto end = Clock::now() + timeout;
  *closed = false;
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      *closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string Events(int from, int count) {
  std::string out;
  for (int i = from; i < from + count; ++i) {
    out += R"({"event_id":"e)" + std::to_string(i) + R"(","type":"message","user_id":"u)" +
           std::to_string(i % 50) + R"(","ts":1700000000000})" + "\n";
  }
  return out;
}

// Regression: HTTP and TCP share one connection count, and an idle
// connection without the token held its slot until the idle timeout: 100
// such connections (re-opened when closed) made 97 of 97 requests with the
// token get 503 for 25 s. Now a new connection evicts the oldest
// unauthenticated one when it needs a slot.
TEST(HostileConnections, PeersWithoutTheTokenCannotLockOutClientsWithIt) {
  testing::TempDir dir;
  testing::ServerProcess server(
      dir.path() + "/data",
      {"--token-file", WriteTokenFile(dir), "--max-connections", "400", "--auth-timeout", "2"});
  ASSERT_TRUE(server.ready());
  // The attacker: 300 silent connections to both ports, each re-opened as
  // soon as the server closes it.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> opened{0};
  std::thread attacker([&] {
    std::vector<int> fds(300, -1);
    auto open = [&](size_t i) {
      fds[i] = testing::ConnectLoopback(i % 2 == 0 ? server.http() : server.tcp());
      opened.fetch_add(1);
    };
    for (size_t i = 0; i < fds.size(); ++i) open(i);
    while (!stop.load()) {
      std::vector<pollfd> polls;
      for (int fd : fds) polls.push_back({fd, POLLIN, 0});
      if (::poll(polls.data(), polls.size(), 20) <= 0) continue;
      for (size_t i = 0; i < fds.size(); ++i) {
        if (polls[i].revents == 0) continue;
        char buf[512];
        if (::read(fds[i], buf, sizeof buf) > 0) continue;  // an error line: closing follows
        ::close(fds[i]);
        open(i);
      }
    }
    for (int fd : fds) ::close(fd);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // every slot taken

  int requests = 0, failures = 0, streams = 0;
  std::string first_failure;
  const auto end = Clock::now() + std::chrono::seconds(5);
  for (int i = 0; Clock::now() < end; ++i) {
    auto r = tools::HttpRequest(server.http(), "GET", "/v1/kpis", {}, 10, kToken);
    ++requests;
    if (!r.ok() || r->status != 200) {
      if (failures++ == 0) first_failure = r.ok() ? r->body : r.status().ToString();
    }
    if (i % 10 == 0) {
      auto s = tools::TcpSend(server.tcp(), Events(i * 10, 10), 10, kToken);
      ++streams;
      if (!s.ok() || testing::Field(*s, "accepted") + testing::Field(*s, "duplicates") != 10) {
        if (failures++ == 0) first_failure = s.ok() ? *s : s.status().ToString();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop.store(true);
  attacker.join();
  std::printf(
      "%d requests and %d streams with the token while %llu connections without it were "
      "opened: %d failed\n",
      requests, streams, static_cast<unsigned long long>(opened.load()), failures);
  EXPECT_GT(opened.load(), 300u) << "the server evicted no connection without the token";
  // Before a connection's token has arrived nothing tells it from the
  // others, and each new one evicts the oldest of the 100 unauthenticated:
  // a client descheduled between connecting and sending (2 cores, a busy
  // test run) can lose that race. Rarely: 0 in most runs; every request
  // failed with the previous version.
  EXPECT_LE(failures * 50, requests + streams)
      << failures << " of " << requests + streams << "; first: " << first_failure;
}

// Regression: a connection that never authenticated was kept until the idle
// timeout (60 s), also one trickling a header. Now it has --auth-timeout.
TEST(HostileConnections, ConnectionsWithoutTheTokenAreClosedAtTheAuthDeadline) {
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() + "/data",
                                {"--token-file", WriteTokenFile(dir), "--auth-timeout", "1"});
  ASSERT_TRUE(server.ready());
  bool closed = false;

  // TCP, silent: told why, then closed.
  int fd = testing::ConnectLoopback(server.tcp());
  ASSERT_GE(fd, 0);
  auto start = Clock::now();
  std::string got = ReadUntilClosed(fd, std::chrono::seconds(8), &closed);
  auto took = Clock::now() - start;
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_NE(got.find(R"({"error":"no AUTH line within 1 s"})"), std::string::npos) << got;

  // HTTP, a header trickled a byte at a time (and never finished).
  fd = testing::ConnectLoopback(server.http());
  ASSERT_GE(fd, 0);
  start = Clock::now();
  const std::string header = "GET /v1/kpis HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  closed = false;
  for (size_t i = 0; Clock::now() - start < std::chrono::seconds(8); ++i) {
    if (!WriteAll(fd, std::string(1, header[i % header.size()]))) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char c;
      if (::read(fd, &c, 1) <= 0) {
        closed = true;
        break;
      }
    }
  }
  took = Clock::now() - start;
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_LT(took, std::chrono::seconds(3));

  // A health probe needs no token, but is held to the same deadline.
  fd = testing::ConnectLoopback(server.http());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  start = Clock::now();
  got = ReadUntilClosed(fd, std::chrono::seconds(8), &closed);
  took = Clock::now() - start;
  ::close(fd);
  EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
  EXPECT_TRUE(closed);
  EXPECT_LT(took, std::chrono::seconds(3));

  // With the token, a keep-alive connection is held to the idle timeout only.
  fd = testing::ConnectLoopback(server.http());
  ASSERT_GE(fd, 0);
  const std::string request =
      std::string("GET /v1/kpis HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kToken +
      "\r\n\r\n";
  ASSERT_TRUE(WriteAll(fd, request));
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  ASSERT_TRUE(WriteAll(fd, request));
  got = ReadUntilClosed(fd, std::chrono::milliseconds(1000), &closed);
  ::close(fd);
  EXPECT_FALSE(closed);
  size_t answers = 0;
  for (size_t at = 0; (at = got.find("HTTP/1.1 200", at)) != std::string::npos; ++at) ++answers;
  EXPECT_EQ(answers, 2u) << got;
}

// Regression: every TCP connection allocated a 256 KiB read buffer and a
// 1 MiB line buffer on accept, ~1.3 MB before it said anything. Now an
// unauthenticated one holds room for its AUTH line, and an authenticated one
// grows its buffers with its input.
TEST(HostileConnections, IdleConnectionsCostLittleMemory) {
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() + "/data",
                                {"--token-file", WriteTokenFile(dir), "--max-connections", "1000",
                                 "--max-unauthenticated", "1000", "--auth-timeout", "120"});
  ASSERT_TRUE(server.ready());
  constexpr int kConnections = 300;
  auto settle = [] { std::this_thread::sleep_for(std::chrono::milliseconds(500)); };
  settle();
  const long base_kb = testing::RssKb(server.pid());
  std::vector<int> unauthenticated;
  for (int i = 0; i < kConnections; ++i) {
    unauthenticated.push_back(testing::ConnectLoopback(server.tcp()));
    ASSERT_GE(unauthenticated.back(), 0);
  }
  settle();
  const long unauth_kb = testing::RssKb(server.pid());
  std::vector<int> authenticated;
  const std::string auth = std::string("AUTH ") + kToken + "\n";
  for (int i = 0; i < kConnections; ++i) {
    authenticated.push_back(testing::ConnectLoopback(server.tcp()));
    ASSERT_GE(authenticated.back(), 0);
    ASSERT_TRUE(WriteAll(authenticated.back(), auth));
  }
  settle();
  const long auth_kb = testing::RssKb(server.pid());
  const double per_unauth = static_cast<double>(unauth_kb - base_kb) / kConnections;
  const double per_auth = static_cast<double>(auth_kb - unauth_kb) / kConnections;
  std::printf(
      "server RSS %ld kB; +%.1f kB per idle connection without AUTH, +%.1f kB per idle "
      "authenticated one\n",
      base_kb, per_unauth, per_auth);
  EXPECT_LT(per_unauth, 16.0);
  EXPECT_LT(per_auth, 64.0);
  // They are still open, and work: one of each kind.
  ASSERT_TRUE(WriteAll(authenticated[0], Events(0, 5)));
  ::shutdown(authenticated[0], SHUT_WR);
  bool closed = false;
  const std::string summary = ReadUntilClosed(authenticated[0], std::chrono::seconds(10), &closed);
  EXPECT_EQ(testing::Field(testing::LastLine(summary), "accepted"), 5u) << summary;
  for (int fd : unauthenticated) ::close(fd);
  for (int fd : authenticated) ::close(fd);
}

// Regression: on SIGTERM open connections got a fixed 200 ms (later 5 s) to
// get their answers. --shutdown-grace sets it: an upload still streaming
// when the signal comes is answered if it ends within the grace, and a TCP
// producer gets its summary.
TEST(HostileConnections, ShutdownGraceLetsOpenConnectionsGetTheirAnswers) {
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() + "/data", {"--shutdown-grace", "12"});
  ASSERT_TRUE(server.ready());
  // TCP: 100 lines made durable, then the signal, then the end of input.
  const int producer = testing::ConnectLoopback(server.tcp());
  ASSERT_GE(producer, 0);
  ASSERT_TRUE(WriteAll(producer, Events(100000, 100)));
  // HTTP: a POST whose body takes ~7 s to arrive, steadily.
  const std::string body = Events(0, 700);
  const int upload = testing::ConnectLoopback(server.http());
  ASSERT_GE(upload, 0);
  ASSERT_TRUE(WriteAll(upload, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                   std::to_string(body.size()) + "\r\n\r\n"));
  std::future<int> exit_status;
  const size_t slice = body.size() / 70 + 1;
  for (size_t at = 0, i = 0; at < body.size(); at += slice, ++i) {
    ASSERT_TRUE(WriteAll(upload, std::string_view(body).substr(at, slice)));
    if (i == 10) exit_status = std::async(std::launch::async, [&] { return server.Terminate(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  bool closed = false;
  const std::string answer = ReadUntilClosed(upload, std::chrono::seconds(10), &closed);
  ::close(upload);
  EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
  EXPECT_NE(answer.find(R"("accepted":700)"), std::string::npos) << answer;
  const std::string summary = ReadUntilClosed(producer, std::chrono::seconds(10), &closed);
  ::close(producer);
  EXPECT_EQ(testing::Field(testing::LastLine(summary), "durable_lines"), 100u) << summary;
  EXPECT_EQ(testing::Field(testing::LastLine(summary), "accepted"), 100u) << summary;
  ASSERT_TRUE(exit_status.valid());
  const int status = exit_status.get();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

int OpenDescriptors(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// Regression (found in review): an HTTP connection refused for want of a
// slot was answered 503 and then lingered 2 s, uncounted, so a peer opening
// connections while the slots were taken held a descriptor per connection:
// 3,000 refused connections, 3,050 descriptors. Now a refused connection is
// closed once its answer is written.
TEST(HostileConnections, RefusedConnectionsHoldNoDescriptors) {
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() + "/data", {"--max-connections", "4"});
  ASSERT_TRUE(server.ready());
  std::vector<int> held;  // every slot, kept by idle keep-alive connections
  for (int i = 0; i < 4; ++i) {
    held.push_back(testing::ConnectLoopback(server.http()));
    ASSERT_TRUE(WriteAll(held.back(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    bool closed = false;
    ReadUntilClosed(held.back(), std::chrono::milliseconds(300), &closed);
    ASSERT_FALSE(closed);
  }
  const int base = OpenDescriptors(server.pid());
  std::vector<int> refused;
  for (int i = 0; i < 300; ++i) refused.push_back(testing::ConnectLoopback(server.http()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int during = OpenDescriptors(server.pid());
  std::printf("server descriptors: %d with every slot taken, %d with 300 more connections open\n",
              base, during);
  // 16 probe connections may be kept (2 s at most), no more.
  EXPECT_LE(during - base, 16 + 4);
  // A refused connection was told why.
  bool closed = false;
  const std::string answer = ReadUntilClosed(refused.back(), std::chrono::seconds(3), &closed);
  EXPECT_NE(answer.find("503"), std::string::npos) << answer;
  for (int fd : refused) ::close(fd);
  for (int fd : held) ::close(fd);
}

// Regression (found in review): a POST body was decoded slice after slice
// in one go; a body of invalid lines never fills the pipeline, so decoding
// 24 MiB of them held its io thread 9 s, and with it every other
// connection of that thread and, on the first, the listeners. Now one slice
// per turn.
TEST(HostileConnections, ALongBodyDoesNotStallOtherConnections) {
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() + "/data");
  ASSERT_TRUE(server.ready());
  std::string body;
  body.reserve(16u << 20);
  while (body.size() < (16u << 20)) body += "1\n";  // 8M lines, each "not a JSON object"
  std::atomic<bool> posted{false};
  std::thread post([&] {
    auto r = tools::HttpRequest(server.http(), "POST", "/v1/events", body, 120);
    EXPECT_TRUE(r.ok() && r->status == 200)
        << (r.ok() ? r->body.substr(0, 200) : r.status().ToString());
    posted.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the body is being decoded
  double worst_ms = 0;
  int probes = 0;
  while (!posted.load()) {
    const auto start = Clock::now();
    auto r = tools::HttpRequest(server.http(), "GET", "/healthz", {}, 60);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (posted.load()) break;  // answered after the body: not a measure
    ASSERT_TRUE(r.ok() && r->status == 200);
    worst_ms = std::max(worst_ms, ms);
    ++probes;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  post.join();
  std::printf(
      "/healthz while a 16 MiB body of invalid lines was decoded: %d probes, worst "
      "%.0f ms\n",
      probes, worst_ms);
  EXPECT_GT(probes, 4);
  EXPECT_LT(worst_ms, 2000);
}

// Regression (found in review): the header of a request was read under one
// deadline, so a header trickled steadily for longer than --idle-timeout
// was cut. Idle means no byte for that long, header or body.
TEST(HostileConnections, AHeaderTrickledSteadilyOutlastsTheIdleTimeout) {
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() + "/data", {"--idle-timeout", "1"});
  ASSERT_TRUE(server.ready());
  const int fd = testing::ConnectLoopback(server.http());
  ASSERT_GE(fd, 0);
  const std::string header = "GET /v1/kpis HTTP/1.1\r\nHost: x\r\nX-Pad: 0123456789\r\n\r\n";
  const auto start = Clock::now();
  for (char c : header) {  // ~2.5 s, a byte every 50 ms
    ASSERT_TRUE(WriteAll(fd, std::string(1, c)))
        << "cut after " << std::chrono::duration<double>(Clock::now() - start).count() << " s";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  bool closed = false;
  const std::string answer = ReadUntilClosed(fd, std::chrono::milliseconds(500), &closed);
  ::close(fd);
  EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
}

}  // namespace
}  // namespace tierstream
