// Decides which connections get a slot, and which unauthenticated one
// gives its slot up.
#include "server/admission.h"

#include <algorithm>
#include <utility>

#include "server/auth.h"
#include "server/server.h"

namespace tierstream::server {

Admission::Admission(int max_connections, int max_unauthenticated, std::string token)
    : max_connections_(max_connections),
      max_unauthenticated_(max_unauthenticated),
      token_(std::move(token)) {}

size_t Admission::MaxUnauthenticated() const {
  const int n = max_unauthenticated_ > 0 ? max_unauthenticated_ : max_connections_ / 4;
  return static_cast<size_t>(std::max(n, 1));
}

Admission::Decision Admission::Admit(int fd, bool http) {
  Decision decision;
  const bool full = connections.load() >= max_connections_;
  auto refuse = [&] {
    decision.probe = http && probe_connections.load() < kMaxProbeConnections;
    decision.busy = !decision.probe;
    return decision;
  };
  if (token_.empty()) return full ? refuse() : decision;
  decision.counted_unauthenticated = !PresentsToken(fd, http, token_);
  absl::MutexLock lock(&mu_);
  const bool share_full =
      decision.counted_unauthenticated && unauthenticated_.size() >= MaxUnauthenticated();
  if (!full && !share_full) return decision;
  if (unauthenticated_.empty()) return refuse();  // every slot is held by an authenticated client
  // The oldest goes, unless the token has just arrived on it (its session
  // has not read it yet): then the next oldest, of the first few.
  auto victim = unauthenticated_.begin();
  int scanned = 0;
  for (auto it = victim; it != unauthenticated_.end() && scanned < 8; ++it, ++scanned) {
    if (!PresentsToken(it->second.fd, it->second.http, token_)) {
      victim = it;
      break;
    }
  }
  victim->second.evict();
  unauthenticated_.erase(victim);
  return decision;
}

uint64_t Admission::AddUnauthenticated(int fd, bool http, std::function<void()> evict) {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = next_ticket_++;
  unauthenticated_.emplace(ticket, Unauthenticated{fd, http, std::move(evict)});
  return ticket;
}

void Admission::Authenticated(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  unauthenticated_.erase(ticket);
}

}  // namespace tierstream::server
