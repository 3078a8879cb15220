// RawExchange: one loopback TCP exchange as the HTTP fuzzer makes it: write
// bytes raw to a fresh connection, half-close, read until the peer closes
// or goes quiet. Header-only and dependency-free, so that a unit test can
// check it (fuzz/raw_exchange_test.cc) without the fuzz build.
//
// Signals: the fuzzer's process takes SIGALRM every -timeout/2+1 seconds
// (libFuzzer's hang check, -timeout=10 in scripts/fuzz: every 6 s), and
// poll() is never restarted after a handler (signal(7)), whatever
// SA_RESTART says. Every call here is therefore retried on EINTR; a reply
// cut short by a signal once looked like a server that closed a /healthz
// connection unanswered.
#ifndef TIERSTREAM_FUZZ_RAW_EXCHANGE_H_
#define TIERSTREAM_FUZZ_RAW_EXCHANGE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

namespace tierstream::fuzz {

// How an exchange ended, for the report of a failed one.
struct ExchangeEnding {
  const char* how = "";  // "eof", "quiet" (nothing for `quiet`), or the call that failed
  int error = 0;         // errno of the failed call (0 for eof and quiet)
  double ms = 0;         // from connect to the end
};

namespace internal {

// poll() for `events` on `fd`, retried on EINTR until `deadline`: >0 ready,
// 0 timed out, <0 failed (errno set).
inline int PollUntil(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
    if (n >= 0 || errno != EINTR) return n;
  }
}

// connect() to 127.0.0.1:port. Interrupted, it goes on in the background:
// wait for it and read its outcome, rather than start another.
inline bool ConnectLoopback(int fd, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
  if (errno != EINTR) return false;
  if (PollUntil(fd, POLLOUT, std::chrono::steady_clock::now() + std::chrono::seconds(5)) <= 0) {
    return false;
  }
  int error = 0;
  socklen_t len = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return false;
  errno = error;
  return error == 0;
}

}  // namespace internal

// Connects to 127.0.0.1:port (retrying for about 2 s while loopback ports
// are scarce; returns "" with how = "connect" if it never could), sends
// `data`, half-closes, and returns what arrives until the server closes or
// sends nothing for `quiet`. It is closed with SO_LINGER 0: a reset if it
// is still open, so no FIN_WAIT socket stays behind. (One that saw the
// server's FIN after its own stays in TIME_WAIT, which connect() reuses on
// loopback after 1 s under net.ipv4.tcp_tw_reuse=2, Linux's default.)
inline std::string RawExchange(uint16_t port, const char* data, size_t size, ExchangeEnding* ending,
                               std::chrono::milliseconds quiet = std::chrono::seconds(2)) {
  const auto start = std::chrono::steady_clock::now();
  *ending = {};
  auto finish = [&](int fd, const char* how, int error) {
    if (fd >= 0) ::close(fd);
    ending->how = how;
    ending->error = error;
    ending->ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      if (internal::ConnectLoopback(fd, port)) break;
      const int error = errno;
      ::close(fd);
      fd = -1;
      errno = error;
    }
    if (attempt == 200) {
      finish(-1, "connect", errno);
      return "";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server closed early: read what it answered
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string reply;
  char buf[4096];
  for (;;) {
    const int ready = internal::PollUntil(fd, POLLIN, std::chrono::steady_clock::now() + quiet);
    if (ready == 0) {
      finish(fd, "quiet", 0);
      return reply;
    }
    if (ready < 0) {
      finish(fd, "poll", errno);
      return reply;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      finish(fd, "recv", errno);
      return reply;
    }
    if (n == 0) {
      finish(fd, "eof", 0);
      return reply;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace tierstream::fuzz

#endif  // TIERSTREAM_FUZZ_RAW_EXCHANGE_H_
