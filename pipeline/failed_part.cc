// The entry of every pipeline thread (the shard workers, the committer): an
// exception that escapes one is caught, logged and recorded as the
// pipeline's failure (on_failure, IngestRefusals, Close), and the thread
// then refuses what it is sent until Close — batches complete as failed,
// queries are answered with the failure, checkpoints and spills fail — so
// that nothing waits for it forever. Its state is left as it was: a restart
// replays the log after the last committed checkpoint.
#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "pipeline/pipeline_impl.h"

namespace tierstream::pipeline {

namespace {

// Runs `body`; what escapes it is described in *what (false), else true.
template <typename Fn>
bool Caught(Fn&& body, std::string* what) {
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    *what = e.what();
  } catch (...) {
    *what = "unknown exception";
  }
  return false;
}

}  // namespace

void Pipeline::Impl::WorkerMain(Worker* w) {
  const std::string part = "shard " + std::to_string(w->id) + " worker";
  std::string what;
  if (Caught([&] { Run(w); }, &what)) return;
  Fail(part, what);
  // Refusing runs no code of the failed part but the batches' and queries'
  // callbacks: should one throw, the worker goes on refusing.
  while (!Caught([&] { RefuseUntilClosed(w); }, &what)) Fail(part, what);
}

void Pipeline::Impl::CommitterMain() {
  std::string what;
  if (Caught([&] { RunCommitter(); }, &what)) return;
  Fail("committer", what);
  while (!Caught([&] { RefuseCommits(); }, &what)) Fail("committer", what);
}

void Pipeline::Impl::Fail(const std::string& part, const std::string& what) {
  LogAt(LogLevel::kError, "%s failed: %s; ingest is refused until a restart", part.c_str(),
        what.c_str());
  Status s = Status::Internal("a pipeline part failed: " + part + " failed: " + what);
  bool first = false;
  {
    MutexLock lock(&error_mu);
    if (first_worker_error.ok()) first_worker_error = s;
    if (part_failure.ok()) {
      part_failure = s;
      first = true;
    }
  }
  failed.store(true, std::memory_order_release);
  if (first && options.on_failure) options.on_failure(s);
}

Status Pipeline::Impl::Failure() const {
  MutexLock lock(&error_mu);
  return part_failure;
}

void Pipeline::Impl::RefuseUntilClosed(Worker* w) {
  using internal::BatchAccess;
  const auto refuse = [this](Batch* b) {
    if (b == nullptr) return;
    BatchAccess::failed(b).store(true);
    CompletePart(b);
  };
  // Cursors it claimed for changes it will never write are holes: the
  // feed goes on past them (a restart makes those changes again).
  if (feed && w->changes_first != 0) feed->Release(std::exchange(w->changes_first, 0));
  for (;;) {
    // What was taken but not completed (the group, the tasks after it),
    // then what came since.
    for (Batch*& b : w->group) refuse(std::exchange(b, nullptr));
    w->group.clear();
    for (Task& task : w->tasks) {
      refuse(std::exchange(task.batch, nullptr));
      if (ShardCall* call = std::exchange(task.call, nullptr)) call->done.set_value(Failure());
    }
    if (w->answering) RefuseQuery(std::move(w->answering));
    while (!w->deferred.empty()) {
      std::unique_ptr<Query> q(w->deferred.back());
      w->deferred.pop_back();
      RefuseQuery(std::move(q));
    }
    Query* q;
    while (w->queries.try_dequeue(q)) RefuseQuery(std::unique_ptr<Query>(q));
    // Close() sets stopping before it wakes the workers: a stop task taken
    // before the failure is not looked for.
    if (stopping.load() && w->queue.size_approx() == 0) return;
    w->queue.wait_dequeue_bulk_timed(w->tasks.data(), w->tasks.size(),
                                     std::chrono::milliseconds(10));
  }
}

void Pipeline::Impl::RefuseQuery(std::unique_ptr<Query> q) {
  const Status failed_part = Failure();
  if (q->kind == Query::Kind::kUser) {
    ProfileReport r;
    r.as_of = watermark.load(std::memory_order_acquire);
    r.status = failed_part;
    q->user_done(std::move(r));
    return;
  }
  if (q->kind == Query::Kind::kExplain) {
    ExplainReport r;
    r.as_of = watermark.load(std::memory_order_acquire);
    r.status = failed_part;
    q->explain_done(std::move(r));
    return;
  }
  // A gathered query: the shard's share is the failure (the stats leave it out).
  Query::Gather& g = *q->gather;
  if (q->kind != Query::Kind::kStats) {
    MutexLock lock(&g.mu);
    if (g.error.ok()) g.error = failed_part;
  }
  if (g.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) FinishGather(q->kind, &g);
}

void Pipeline::Impl::RefuseCommits() {
  // Workers parked for a store recovery that will not come go on.
  pause_requested.store(false, std::memory_order_release);
  const Status failed_part = Failure();
  for (;;) {
    // The job in hand when the committer failed, then each one queued: its
    // outcome is given as a failed write's is (the worker keeps its log and
    // re-marks its users dirty; a spill's ids stay in memory).
    const CommitJob job = std::exchange(in_hand, CommitJob{});
    if (Worker* w = job.w; w != nullptr) {
      if (job.spill) {
        w->spill_status = failed_part;
        w->spill_phase.store(SpillPhase::kWritten, std::memory_order_release);
        w->spill_phase.notify_all();
      } else {
        w->cp_status = failed_part;
        w->cp_phase.store(CheckpointPhase::kCommitted, std::memory_order_release);
        w->cp_phase.notify_all();
      }
      w->queue.enqueue(Task{nullptr});  // wakes the worker to take it
    }
    commits.wait_dequeue(in_hand);
    if (in_hand.w == nullptr) return;  // StopCommitter
  }
}

}  // namespace tierstream::pipeline
