// Admission: the connection slots of the listeners. It counts the open
// connections against --max-connections (and the few HTTP probe connections
// beyond it, kMaxProbeConnections), and, with a token, keeps the registry of
// connections not yet authenticated, oldest first, so that a new connection
// that finds the slots or the unauthenticated share full evicts the oldest
// of them instead of being refused: peers without the token cannot hold
// the slots that clients with it need.
//
// Thread safety: thread-safe. The counters are atomics; the registry is
// touched once per connection (admission, authentication, end), never per
// byte, under a mutex.
#ifndef TIERSTREAM_SERVER_ADMISSION_H_
#define TIERSTREAM_SERVER_ADMISSION_H_

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace tierstream::server {

class Admission {
 public:
  // `max_unauthenticated` 0: a quarter of `max_connections`. No token: the
  // registry is not used.
  Admission(int max_connections, int max_unauthenticated, std::string token);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  struct Decision {
    bool busy = false;   // refuse it
    bool probe = false;  // HTTP: admitted beyond the limit, for health only (kMaxProbeConnections)
    bool counted_unauthenticated = false;  // give it a ticket (AddUnauthenticated)
  };
  // Decides on a new connection `fd` (its first bytes are peeked at, see
  // PresentsToken). With a token, when every slot is taken, or the
  // unauthenticated connections have their whole share, the oldest
  // unauthenticated connection is evicted for it (its `evict` is called,
  // under the registry's lock: it must only post the eviction); it is
  // refused only when every slot is held by an authenticated connection.
  // (An evicted connection holds its slot until it has closed, a moment
  // later.) A connection whose first bytes already carry the token is not
  // counted as unauthenticated, so a churn of connections without it (each
  // evicting the oldest) cannot evict it before its first read.
  Decision Admit(int fd, bool http) ABSL_LOCKS_EXCLUDED(mu_);
  // Counts a new connection as unauthenticated; the returned ticket leaves
  // the registry through Authenticated(). `evict` closes the connection
  // (posted to its thread; a connection authenticated meanwhile stays).
  uint64_t AddUnauthenticated(int fd, bool http, std::function<void()> evict)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The connection authenticated or closed: it no longer counts (nothing if
  // it was evicted meanwhile).
  void Authenticated(uint64_t ticket) ABSL_LOCKS_EXCLUDED(mu_);

  // The open connections, counted by the sessions themselves.
  std::atomic<int> connections{0};        // producers and queries (--max-connections)
  std::atomic<int> probe_connections{0};  // the extra ones (kMaxProbeConnections)

 private:
  size_t MaxUnauthenticated() const;

  struct Unauthenticated {
    int fd;  // to peek at (PresentsToken)
    bool http;
    std::function<void()> evict;
  };
  const int max_connections_;
  const int max_unauthenticated_;
  const std::string token_;
  absl::Mutex mu_;
  // By ticket: oldest first.
  std::map<uint64_t, Unauthenticated> unauthenticated_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_ADMISSION_H_
