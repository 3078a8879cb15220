// A failed store: RocksDB refuses every write after one failed, so ingest
// is refused (Submit, IngestRefusals) while the committer brings the store
// back between its jobs — Resume(), or a reopen with every worker parked
// between groups — with backoff.
#include <chrono>
#include <cstdlib>
#include <shared_mutex>
#include <thread>

#include "common/fd_limit.h"
#include "pipeline/pipeline_impl.h"

namespace tierstream::pipeline {

void Pipeline::Impl::Park(Worker* w) {
  // Between groups: every batch taken so far is logged or refused, and no
  // store call is in progress on this thread.
  parked.fetch_add(1, std::memory_order_acq_rel);
  while (pause_requested.load(std::memory_order_acquire)) {
    // Reopening a database may take a while (its WAL is replayed): probes
    // must not time out meanwhile.
    AnswerQueries(w, false, true /*stats_only*/);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  parked.fetch_sub(1, std::memory_order_acq_rel);
}

void Pipeline::Impl::TendStore() {
  StoreRecovery& r = recovery_state;
  const auto release = [this] { pause_requested.store(false, std::memory_order_release); };
  if (!store->failing()) {
    r.failing = false;
    return;
  }
  const auto now = Clock::now();
  if (!r.failing) {
    r = StoreRecovery{};
    r.failing = true;
    r.since = r.next_attempt = now;
    r.backoff = std::chrono::milliseconds(50);
    LogAt(LogLevel::kError, "the store failed (%s); ingest is refused until it recovers",
          store->failure().c_str());
  }
  // After a failed part the store waits for the restart: a failed worker
  // would never park.
  if (stopping.load() || !workers_running.load() || failed.load()) {
    if (pause_requested.load()) release();  // Close() or Open() owns the workers now
    return;
  }
  if (!pause_requested.load(std::memory_order_acquire)) {
    if (now < r.next_attempt) return;
    // Opening a database again needs descriptors: when a flood of
    // connections took them, wait until they are back.
    const uint64_t free_fds = FreeFds();
    if (free_fds < static_cast<uint64_t>(state::kStoreReopenFds)) {
      if (!r.told_fds) {
        r.told_fds = true;
        LogAt(LogLevel::kWarning,
              "%llu file descriptors free (of %llu); the store is reopened once %d are",
              static_cast<unsigned long long>(free_fds),
              static_cast<unsigned long long>(CurrentFdLimit().soft), state::kStoreReopenFds);
      }
      r.next_attempt = now + r.backoff;
      r.backoff = std::min(r.backoff * 2, std::chrono::milliseconds(1000));
      return;
    }
    pause_requested.store(true, std::memory_order_release);
    for (auto& w : workers) w->queue.enqueue(Task{nullptr});
    return;
  }
  // Jobs go on being committed (or failing) meanwhile: a worker may be
  // waiting for one before it gets to the top of its loop.
  if (parked.load(std::memory_order_acquire) < workers.size()) return;
  ++r.attempts;
  bool reopened = false, unusable = false;
  const auto recover_start = Clock::now();
  Status s;
  {
    // No feed reader (an HTTP thread) may be in the store meanwhile.
    std::unique_lock<std::shared_mutex> readers(store_readers_mu);
    s = store->Recover(&reopened, &unusable);
  }
  const double recover_secs = std::chrono::duration<double>(Clock::now() - recover_start).count();
  if (unusable) {
    ::tierstream::Log(LogLevel::kError,
                      "tierstream: FATAL: %s; exiting (a restart recovers every acknowledged "
                      "event)",
                      s.ToString().c_str());
    std::_Exit(1);
  }
  // Blocks whose writes failed were never acknowledged: none may be
  // replayed by a later restart (the parked workers' log_seq is final).
  for (auto& w : workers) {
    if (s.ok()) s = store->DeleteLogAfter(w->id, w->log_seq);
  }
  release();
  if (s.ok()) {
    const double secs = std::chrono::duration<double>(Clock::now() - r.since).count();
    LogAt(LogLevel::kInfo,
          "the store recovered after %.1f s (%s in %.2f s, %d attempt%s); ingest resumes", secs,
          reopened ? "reopened" : "resumed", recover_secs, r.attempts, r.attempts == 1 ? "" : "s");
    r.failing = false;
    return;
  }
  LogAt(LogLevel::kError, "store recovery failed (will retry): %s", s.ToString().c_str());
  r.next_attempt = Clock::now() + r.backoff;
  r.backoff = std::min(r.backoff * 2, std::chrono::milliseconds(1000));
}

std::vector<std::string> Pipeline::IngestRefusals() const {
  std::vector<std::string> reasons;
  if (impl_->failed.load(std::memory_order_acquire)) {
    reasons.push_back(impl_->Failure().ToString() + "; restart the server");
  }
  if (impl_->disk.Low()) reasons.emplace_back("disk space is below the watermark");
  if (impl_->store->failing()) {
    reasons.emplace_back("a durable write failed (" + impl_->store->failure() +
                         "); ingest resumes once the store recovers");
  }
  return reasons;
}

}  // namespace tierstream::pipeline
