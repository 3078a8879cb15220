// ChangeFeed: the cursors of the change feed, what of it is visible, and
// who waits for more.
//
// Shard workers write their users' tier changes themselves (each in one
// write with the log block that makes it replayable, see shard_worker.cc).
// A worker Claim()s consecutive cursors before its write and Release()s them
// after; the feed is visible up to the lowest claim still in flight, so a
// reader never passes a cursor that a slower shard is still writing: once a
// cursor is visible, everything before it is durable or will never exist
// (a claim whose write failed is retried under the same cursors; after a
// crash unwritten cursors stay holes, and new ones start past the last one
// written).
//
// Thread safety: thread-safe. Waiters' callbacks run on the thread that made
// the feed advance (a worker) and must not block.
#ifndef TIERSTREAM_PIPELINE_CHANGE_FEED_H_
#define TIERSTREAM_PIPELINE_CHANGE_FEED_H_

#include <absl/container/btree_map.h>
#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <cstdint>
#include <functional>

#include "common/mutex.h"

namespace tierstream::pipeline {

class ChangeFeed {
 public:
  // `last_written`: the largest cursor in the store (0: none).
  explicit ChangeFeed(uint64_t last_written)
      : next_(last_written + 1), visible_end_(last_written + 1) {}

  // Claims n >= 1 consecutive cursors and returns the first.
  uint64_t Claim(size_t n);
  // The claim starting at `first` is written: the feed may advance past it.
  void Release(uint64_t first);
  // Every change with a cursor below this is durable (or a hole).
  uint64_t visible_end() const { return visible_end_.load(std::memory_order_acquire); }

  // Calls fn() once, as soon as visible_end() > after + 1 (at once if it
  // already is). Returns a token for Cancel (0 if fn ran already).
  uint64_t OnAdvance(uint64_t after, std::function<void()> fn);
  // Forgets a waiter; false if its callback ran (or is running) already.
  bool Cancel(uint64_t token);

 private:
  struct Waiter {
    uint64_t after;
    std::function<void()> fn;
  };

  mutable Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_);
  // Claims in flight: first cursor -> count of claims starting there (1).
  absl::btree_map<uint64_t, int> in_flight_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  std::atomic<uint64_t> visible_end_;
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_CHANGE_FEED_H_
