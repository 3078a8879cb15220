// RawExchange (the HTTP fuzzer's client) under a storm of signals, as
// libFuzzer's SIGALRM hang check delivers them: the answer must be read
// whole, and the quiet period waited out, however often poll() and recv()
// are interrupted.
#include "fuzz/raw_exchange.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

namespace tierstream::fuzz {
namespace {

constexpr char kAnswer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

// One loopback server connection: reads the request to its end (the
// client half-closes), waits `delay`, answers kAnswer unless `silent`,
// and closes after `linger`.
class OneShotServer {
 public:
  OneShotServer(std::chrono::milliseconds delay, bool silent, std::chrono::milliseconds linger)
      : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_, 4) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "listen: " << std::strerror(errno);
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, delay, silent, linger] {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      char buf[4096];
      for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        request_.append(buf, static_cast<size_t>(n));
      }
      std::this_thread::sleep_for(delay);
      if (!silent) ::send(fd, kAnswer, sizeof kAnswer - 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(linger);
      ::close(fd);
    });
  }
  ~OneShotServer() {
    thread_.join();
    ::close(listener_);
  }
  uint16_t port() const { return port_; }
  // Valid once the destructor ran, or after the exchange.
  const std::string& request() const { return request_; }

 private:
  int listener_;
  uint16_t port_ = 0;
  std::string request_;
  std::thread thread_;
};

// Interrupts the thread that made it with SIGUSR1 (a handler without
// SA_RESTART, like libFuzzer's for SIGALRM) every 200 µs while it lives.
class SignalStorm {
 public:
  SignalStorm() : target_(pthread_self()) {
    struct sigaction sa {};
    sa.sa_handler = [](int) { interrupted.fetch_add(1, std::memory_order_relaxed); };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, &old_);
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        pthread_kill(target_, SIGUSR1);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  ~SignalStorm() {
    stop_.store(true);
    thread_.join();
    sigaction(SIGUSR1, &old_, nullptr);
  }
  static inline std::atomic<int> interrupted{0};

 private:
  pthread_t target_;
  struct sigaction old_ {};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(RawExchange, ReadsTheWholeAnswerWhileSignalsInterruptIt) {
  constexpr char kRequest[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  for (int round = 0; round < 5; ++round) {
    OneShotServer server(std::chrono::milliseconds(100), /*silent=*/false,
                         std::chrono::milliseconds(0));
    ExchangeEnding ending;
    std::string reply;
    const int before = SignalStorm::interrupted.load();
    {
      SignalStorm storm;
      reply = RawExchange(server.port(), kRequest, sizeof kRequest - 1, &ending);
    }
    EXPECT_GT(SignalStorm::interrupted.load() - before, 10) << "the storm did not reach it";
    EXPECT_EQ(reply, kAnswer) << "ended by " << ending.how << ", errno " << ending.error << " ("
                              << std::strerror(ending.error) << ") after " << ending.ms << " ms";
    EXPECT_STREQ(ending.how, "eof");
  }
}

TEST(RawExchange, WaitsOutTheQuietPeriodWhileSignalsInterruptIt) {
  OneShotServer server(std::chrono::milliseconds(0), /*silent=*/true,
                       std::chrono::milliseconds(600));
  ExchangeEnding ending;
  std::string reply;
  {
    SignalStorm storm;
    reply = RawExchange(server.port(), "x", 1, &ending, std::chrono::milliseconds(300));
  }
  EXPECT_EQ(reply, "");
  EXPECT_STREQ(ending.how, "quiet") << "errno " << ending.error;
  EXPECT_GE(ending.ms, 300);
}

}  // namespace
}  // namespace tierstream::fuzz
