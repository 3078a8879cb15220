#include "tests/webhook_receiver.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>

namespace tierstream::testing {

namespace {

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

WebhookReceiver::WebhookReceiver(Options options) : options_(options), rng_(options.seed) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

WebhookReceiver::~WebhookReceiver() { Stop(); }

void WebhookReceiver::Hold(bool hold) {
  std::lock_guard<std::mutex> lock(mu_);
  hold_ = hold;
  if (!hold) unhold_.notify_all();
}

void WebhookReceiver::Stop() {
  if (stop_.exchange(true)) return;
  Hold(false);
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(connections_);
  }
  for (auto& t : threads) t.join();
  // Closed only now: a connection's number is never reused while Stop may
  // still shut it down.
  for (int fd : fds_) ::close(fd);
}

std::vector<WebhookReceiver::Request> WebhookReceiver::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void WebhookReceiver::AcceptLoop() {
  while (!stop_.load()) {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (stop_.load()) return;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    fds_.push_back(fd);
    connections_.emplace_back([this, fd] { Serve(fd); });
  }
}

int WebhookReceiver::Decide() {
  std::lock_guard<std::mutex> lock(mu_);
  const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
  if (r < options_.fail_rate) return 500;
  if (r < options_.fail_rate + options_.hang_rate) return 503;
  return 200;
}

void WebhookReceiver::Serve(int fd) {
  std::string in;
  char buf[65536];
  const auto fill = [&]() {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<size_t>(n));
    return true;
  };
  for (;;) {
    size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return;  // closed (a kept connection) or shut down
    }
    Request req;
    const std::string head = in.substr(0, end);
    in.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    const size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
    req.method = request_line.substr(0, sp1);
    req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    while (line_end != std::string::npos) {
      const size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line = head.substr(start, line_end - start);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      req.headers[Lower(line.substr(0, colon))] = value;
    }
    const size_t length =
        req.headers.count("content-length") != 0 ? std::stoul(req.headers["content-length"]) : 0;
    while (in.size() < length) {
      if (!fill()) return;
    }
    req.body = in.substr(0, length);
    in.erase(0, length);
    req.answer = Decide();
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (hold_) req.answer = 503;
      requests_.push_back(req);
      unhold_.wait(lock, [this] { return !hold_; });
    }
    if (req.answer == 503) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.hang_ms));
    }
    const std::string status = req.answer == 200   ? "200 OK"
                               : req.answer == 500 ? "500 Internal Server Error"
                                                   : "503 Service Unavailable";
    const std::string answer_body = req.answer == 200 ? "ok" : "try again";
    if (!SendAll(fd, "HTTP/1.1 " + status + "\r\nContent-Length: " +
                         std::to_string(answer_body.size()) + "\r\n\r\n" + answer_body)) {
      return;
    }
    if (req.answer == 503) return;  // its client has given up on this connection
  }
}

}  // namespace tierstream::testing
