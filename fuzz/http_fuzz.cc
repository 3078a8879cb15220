// libFuzzer target: the HTTP request path end to end. One server (pipeline
// on a temporary data dir, HTTP listener on loopback) lives for the whole
// run; each input is written raw to a fresh connection and the answer read
// until the server closes or 2 s pass. The server must never crash, and must
// still answer /healthz after every input.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "pipeline/pipeline.h"
#include "server/server.h"

namespace {

struct Fixture {
  Fixture() {
    char tmpl[] = "/tmp/tierstream-fuzz-XXXXXX";
    dir = mkdtemp(tmpl);
    tierstream::pipeline::PipelineOptions po;
    po.data_dir = dir;
    po.shards = 2;
    po.log_to_stderr = false;
    po.min_free_bytes = 0;
    pipeline = std::move(tierstream::pipeline::Pipeline::Open(po)).value();
    tierstream::server::ServerOptions so;
    so.http_address = "127.0.0.1:0";
    so.tcp_address = "127.0.0.1:0";
    so.max_body_bytes = 1 << 20;
    so.idle_timeout_seconds = 2;
    server = std::make_unique<tierstream::server::Server>(pipeline.get(), so);
    if (!server->Start().ok()) std::abort();
    port = server->http_port();
    thread = std::thread([this] { server->Run(); });
  }
  std::string dir;
  std::unique_ptr<tierstream::pipeline::Pipeline> pipeline;
  std::unique_ptr<tierstream::server::Server> server;
  std::thread thread;
  uint16_t port = 0;
};

// How the last Exchange ended, for the report of a health check that failed.
struct Ending {
  int recv_errno = 0;  // 0: the server closed (EOF) or the 2 s passed
  double ms = 0;       // from connect to the end
};
Ending g_ending;

std::string Exchange(uint16_t port, const char* data, size_t size) {
  const auto start = std::chrono::steady_clock::now();
  g_ending = {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = -1;
  // Tens of thousands of short connections: retry while loopback ports are
  // scarce; a server that stays unreachable is a finding.
  for (int attempt = 0; fd < 0; ++attempt) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    // Close with RST: no TIME_WAIT on either side to exhaust the ports.
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
    ::close(fd);
    fd = -1;
    if (attempt == 200) std::abort();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string reply;
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 2000) > 0) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) g_ending.recv_errno = errno;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  g_ending.ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return reply;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();  // lives until exit, like the server
  Exchange(fixture->port, reinterpret_cast<const char*>(data), size);
  static const char kHealth[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  // The server must still answer, at the first try: a health check closed
  // unanswered is a finding, reported with how the connection ended and the
  // input before it. (Earlier runs saw that about once per 50,000 inputs and
  // retried it; not reproduced in 207,000 inputs since the server/ split, so
  // no longer tolerated.)
  std::string health = Exchange(fixture->port, kHealth, sizeof kHealth - 1);
  if (health.rfind("HTTP/1.1 200", 0) != 0) {
    std::fprintf(stderr,
                 "healthz unanswered after the input below: reply '%s', recv errno %d (%s), "
                 "%.1f ms after connect\n",
                 health.c_str(), g_ending.recv_errno, std::strerror(g_ending.recv_errno),
                 g_ending.ms);
    std::fwrite(data, 1, size, stderr);
    std::fputc('\n', stderr);
    std::abort();
  }
  return 0;
}
