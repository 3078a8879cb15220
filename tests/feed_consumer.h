// A change-feed consumer for the integration tests, as a CRM would write
// one: it follows GET /v1/changes by long poll, or GET /v1/changes/stream
// (Server-Sent Events), remembers its last cursor, and resumes from it after
// any error (the server killed, restarting, a refused connection). Every
// change it receives is kept, in order, for the test to check.
#ifndef TIERSTREAM_TESTS_FEED_CONSUMER_H_
#define TIERSTREAM_TESTS_FEED_CONSUMER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tierstream::testing {

struct SeenChange {
  uint64_t cursor = 0;
  std::string user_id;
  uint64_t seq = 0;
  std::string from;  // "" for null (her first tier)
  std::string to;
  int64_t at = 0;
  std::string cause;  // "event:<id>", "time" or "rules:<rules>"
};

class FeedConsumer {
 public:
  enum class Mode { kLongPoll, kStream };
  // `address` ("host:port") is read before every (re)connection: the
  // server may move to another port when it restarts.
  FeedConsumer(Mode mode, std::function<std::string()> address);
  ~FeedConsumer();  // stops and joins

  void Stop();
  // The changes received so far, and the cursor it would resume after.
  std::vector<SeenChange> changes() const;
  uint64_t last_cursor() const { return last_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }
  // Waits until it has received everything up to `cursor`; false on timeout.
  bool WaitFor(uint64_t cursor, int timeout_seconds) const;

 private:
  void Run();
  bool LongPollOnce(const std::string& address);
  bool StreamOnce(const std::string& address);
  bool Take(const std::string& change_json);

  const Mode mode_;
  const std::function<std::string()> address_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> last_{0};
  std::atomic<uint64_t> reconnects_{0};
  mutable std::mutex mu_;
  std::vector<SeenChange> changes_;
  std::thread thread_;
};

// What the checks of a consumer's changes found, each a list of messages
// (empty when the promise holds).
struct FeedReport {
  std::vector<std::string> errors;
  std::map<std::string, std::string> last_to;  // user -> her last `to`
  size_t time_changes = 0;
};
// Cursors strictly increasing (none twice), per user seq 1, 2, 3, ... with
// each `from` the previous `to` (null first).
FeedReport CheckFeed(const std::vector<SeenChange>& changes);

}  // namespace tierstream::testing

#endif  // TIERSTREAM_TESTS_FEED_CONSUMER_H_
