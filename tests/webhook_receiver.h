// A webhook receiver for the integration tests: a small threaded HTTP/1.1
// server over POSIX sockets (a thread per connection, keep-alive) that
// records every request it gets, and answers each as its Options say — 200,
// 500, or after hanging for a while (past the webhook's timeout) 503 — so
// that only a request recorded as answered 200 can have been delivered.
#ifndef TIERSTREAM_TESTS_WEBHOOK_RECEIVER_H_
#define TIERSTREAM_TESTS_WEBHOOK_RECEIVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace tierstream::testing {

class WebhookReceiver {
 public:
  struct Options {
    double fail_rate = 0;  // answered 500 at once
    double hang_rate = 0;  // answered 503 after hang_ms
    int hang_ms = 0;
    uint64_t seed = 1;
  };
  struct Request {
    std::string method, target;
    std::map<std::string, std::string> headers;  // names in lowercase
    std::string body;
    int answer = 0;  // 200, 500, or 503 after a hang (or a hold)
  };

  explicit WebhookReceiver(Options options);
  ~WebhookReceiver();  // stops and joins
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  uint16_t port() const { return port_; }
  // Every request so far, in the order they arrived (a request is recorded
  // when it has been read, before it is answered).
  std::vector<Request> requests() const;
  // While held, every request is recorded and then left unanswered until
  // Hold(false), when it gets 503 (and its connection is closed).
  void Hold(bool hold);
  // Stops accepting, closes every connection and joins their threads.
  void Stop();

 private:
  void AcceptLoop();
  void Serve(int fd);
  int Decide();

  const Options options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  bool hold_ = false;  // under mu_
  std::condition_variable unhold_;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::vector<Request> requests_;
  std::vector<std::thread> connections_;
  std::vector<int> fds_;
};

}  // namespace tierstream::testing

#endif  // TIERSTREAM_TESTS_WEBHOOK_RECEIVER_H_
