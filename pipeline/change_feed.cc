// The change feed's cursor claims, visibility and waiters (change_feed.h).
#include "pipeline/change_feed.h"

#include <utility>
#include <vector>

namespace tierstream::pipeline {

uint64_t ChangeFeed::Claim(size_t n) {
  MutexLock lock(&mu_);
  const uint64_t first = next_;
  next_ += n;
  ++in_flight_[first];
  return first;
}

void ChangeFeed::Release(uint64_t first) {
  std::vector<std::function<void()>> ready;
  {
    MutexLock lock(&mu_);
    auto it = in_flight_.find(first);
    if (it != in_flight_.end() && --it->second == 0) in_flight_.erase(it);
    const uint64_t end = in_flight_.empty() ? next_ : in_flight_.begin()->first;
    if (end <= visible_end_.load(std::memory_order_relaxed)) return;
    visible_end_.store(end, std::memory_order_release);
    for (auto w = waiters_.begin(); w != waiters_.end();) {
      if (end > w->second.after + 1) {
        ready.push_back(std::move(w->second.fn));
        waiters_.erase(w++);
      } else {
        ++w;
      }
    }
  }
  for (auto& fn : ready) fn();
}

uint64_t ChangeFeed::OnAdvance(uint64_t after, std::function<void()> fn) {
  {
    MutexLock lock(&mu_);
    if (visible_end_.load(std::memory_order_relaxed) <= after + 1) {
      const uint64_t token = next_token_++;
      waiters_.emplace(token, Waiter{after, std::move(fn)});
      return token;
    }
  }
  fn();
  return 0;
}

bool ChangeFeed::Cancel(uint64_t token) {
  MutexLock lock(&mu_);
  return waiters_.erase(token) > 0;
}

}  // namespace tierstream::pipeline
