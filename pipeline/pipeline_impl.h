// Pipeline::Impl: what the parts of the pipeline share. Private to pipeline/
// (only its .cc files include it); one file per job:
//
//   batch.cc         the router (BatchBuilder), Submit, and completing a batch
//   shard_worker.cc  a worker's loop: groups of batches, housekeeping between
//   committer.cc     checkpoints and id spills: snapshot on the worker, commit
//                    and log trim on the committer thread
//   failed_store.cc  a failed store: workers park, the committer brings it back
//   change_log.cc    the workers' side of the change feed: writing changes,
//                    republishing them after a crash, retention, reading
//   failed_part.cc   each thread's entry: a part that failed (an exception
//                    escaped it) refuses what it is sent until Close
//   recovery.cc      Open's reload of the checkpoints and replay of the journal
//   queries.cc       typed fan-out/gather of profiles, KPIs, tier pages, stats
//   pipeline.cc      Open/Close and the small public accessors
//
// Ownership: Impl owns the store, the workers (each owns its ShardState and
// queues) and the committer thread. Thread safety: a Worker's non-atomic
// members are confined to its thread, except those of a checkpoint or spill
// in flight, which pass to the committer and back through cp_phase and
// spill_phase (release/acquire). Impl's atomics are shared; the rest is set
// before the threads start, but for what error_mu guards.
#ifndef TIERSTREAM_PIPELINE_PIPELINE_IMPL_H_
#define TIERSTREAM_PIPELINE_PIPELINE_IMPL_H_

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "common/latency_histogram.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/time.h"
#include "pipeline/change_feed.h"
#include "pipeline/disk_watermark.h"
#include "pipeline/pipeline.h"
#include "state/id_run.h"
#include "state/shard_state.h"
#include "state/store.h"

namespace tierstream::pipeline {

using Clock = std::chrono::steady_clock;

inline constexpr uint64_t kEventSeed = 0;   // duplicate index seed for own events
inline constexpr uint64_t kCreditSeed = 1;  // ... and for referral credits
inline constexpr size_t kMaxGroupBatches = 64;
inline constexpr size_t kMaxGroupEvents = 64 * 1024;
// How long a worker with nothing under way waits for a task before it looks
// at the clock again (a new day, a checkpoint falling due).
inline constexpr std::chrono::milliseconds kSettledWait{100};
// What one event id costs in the exact in-memory map (hash map slot and
// control byte at typical load, by-day list, new-id list).
inline constexpr size_t kBytesPerMemoryId = 80;

// Where a worker's checkpoint is. The worker moves it Idle -> Snapshotting
// (encoding users in slices) -> Committing (handed to the committer), the
// committer to Committed, and the worker back to Idle once it took the outcome.
enum class CheckpointPhase { kIdle, kSnapshotting, kCommitting, kCommitted };
// Where a worker's spill of event ids is: the worker moves it Idle ->
// Writing, the committer to Written, the worker back to Idle.
enum class SpillPhase { kIdle, kWriting, kWritten };

inline void AtomicMax(std::atomic<int64_t>* a, int64_t v) {
  int64_t cur = a->load(std::memory_order_relaxed);
  while (v > cur && !a->compare_exchange_weak(cur, v, std::memory_order_acq_rel)) {
  }
}

namespace internal {
// The pipeline's access to a Batch's completion counters (private to Batch).
class BatchAccess {
 public:
  static std::atomic<uint32_t>& pending(Batch* b) { return b->pending_; }
  static std::atomic<uint64_t>& accepted(Batch* b) { return b->accepted_; }
  static std::atomic<uint64_t>& duplicates(Batch* b) { return b->duplicates_; }
  static std::atomic<bool>& failed(Batch* b) { return b->failed_; }
  static uint64_t& weight(Batch* b) { return b->weight_; }
  static uint32_t& reject_shard(Batch* b) { return b->reject_shard_; }
  static uint32_t reject_shard(const Batch* b) { return b->reject_shard_; }
  static std::function<void(BatchOutcome)>& done(Batch* b) { return b->done_; }
};
}  // namespace internal

// A query on its way to a worker (queries.cc).
struct Query {
  enum class Kind { kUser, kExplain, kKpis, kListTier, kStats } kind;
  // kUser, kExplain
  std::string user_id;
  std::function<void(std::optional<ProfileReport>)> user_done;
  std::function<void(std::optional<ExplainReport>)> explain_done;
  // The others: shared across shards, the last one answers. What the
  // shards add up is guarded by mu; the rest is set before the broadcast.
  struct Gather {
    std::atomic<uint32_t> pending{0};
    Mutex mu;
    state::KpiPartial kpis ABSL_GUARDED_BY(mu);
    // Profile when with_profiles.
    std::vector<std::pair<std::string, ProfileReport>> members ABSL_GUARDED_BY(mu);
    int64_t as_of ABSL_GUARDED_BY(mu) = kNoTs;
    uint32_t reporting ABSL_GUARDED_BY(mu) = 0;                 // shards that added their share
    std::vector<PartitionKpis> partitions ABSL_GUARDED_BY(mu);  // the Kafka mode's shares
    PipelineStats stats ABSL_GUARDED_BY(mu);
    // The first shard's failure: a tier listing that failed, a failed shard.
    Status error ABSL_GUARDED_BY(mu);
    state::Tier tier = state::Tier::kNone;
    size_t limit = 0;
    bool with_profiles = false;
    std::function<void(TierPage)> page_done;
    std::function<void(KpiReport)> kpis_done;
    std::function<void(PipelineStats)> stats_done;
  };
  std::shared_ptr<Gather> gather;
  std::string after;
};

// Work a shard's worker runs between groups (ClaimShard).
struct ShardCall {
  std::function<Status()> fn;
  std::promise<Status> done;
};

struct Task {
  Batch* batch = nullptr;  // null: a wake-up for the query queue or shutdown
  ShardCall* call = nullptr;
};

// Reloads evicted users and spilled event-id blocks of one shard from the
// store (through a pointer to the pointer: the store may be reopened).
class StoreUserSource final : public state::UserSource, public state::IdRunSource {
 public:
  StoreUserSource(state::Store** store, uint32_t shard) : store_(store), shard_(shard) {}
  Status Load(std::string_view user_id, std::string* encoded, bool* found) override {
    return Retried([&] { return (*store_)->GetUser(shard_, user_id, encoded, found); });
  }
  Status FindByHash(std::span<const uint64_t> hashes, std::vector<std::string>* user_ids) override {
    const size_t size = user_ids->size();
    return Retried([&] {
      user_ids->resize(size);
      return (*store_)->FindUsersByHash(shard_, hashes, user_ids);
    });
  }
  Status ReadIdBlock(uint64_t run_no, uint32_t block, std::string* bytes) override {
    return (*store_)->ReadIdBlock(shard_, run_no, block, bytes);
  }

 private:
  // A read that cannot open a table file (no descriptor left) is retried
  // for up to a second: the shard cannot go on without the user (ShardState
  // gives up on an error).
  template <typename Fn>
  static Status Retried(Fn&& read) {
    Status s = read();
    for (int attempt = 0; attempt < 50 && s.code() == StatusCode::kIoError; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      s = read();
    }
    return s;
  }

  state::Store** store_;
  uint32_t shard_;
};

struct Pipeline::Impl {
  // One shard: its state, its queues and its thread.
  struct Worker {
    Worker(uint32_t shard_id, const state::Config& config, state::Store** store)
        : id(shard_id),
          store_reader(store, shard_id),
          state(shard_id, config, &store_reader, &store_reader) {}
    uint32_t id;
    StoreUserSource store_reader;
    state::ShardState state;
    moodycamel::BlockingConcurrentQueue<Task> queue;
    moodycamel::ConcurrentQueue<Query*> queries;
    std::thread thread;
    // What the worker took and has not completed: the tasks it dequeued
    // (each nulled once in the group) and the group being processed (each
    // nulled once completed). A failed worker refuses what is left.
    std::vector<Task> tasks = std::vector<Task>(kMaxGroupBatches);
    std::vector<Batch*> group;
    // The query being answered until this shard has given its share (a
    // failed worker answers it).
    std::unique_ptr<Query> answering;
    uint64_t log_seq = 0;         // last block appended to this shard's log
    uint64_t checkpoint_seq = 0;  // last block covered by a checkpoint
    Clock::time_point last_checkpoint = Clock::now();
    // Seen blobs are numbered by this counter (the committer's while a
    // checkpoint is in flight; a spill reads it on the worker).
    std::atomic<uint64_t> seen_sub{0};
    size_t processed_since_housekeep = 0;  // events of the groups since
    // How long the worker may wait for a task before its next Housekeep:
    // short while housekeeping is under way (a sweep, expiry, a snapshot, a
    // spill, unwritten changes), long once only time can give it work.
    std::chrono::milliseconds idle_wait{5};
    uint64_t logged_since_checkpoint = 0;  // events appended to the log since
    // The checkpoint being committed by the committer thread, if any: the
    // worker builds it (a consistent snapshot) and goes on applying events.
    std::unique_ptr<state::Store::Checkpoint> cp;
    state::NewSeenIds cp_new_seen;  // its new event ids: the committer encodes them
    // The event ids being spilled into a run, beside checkpoints: the
    // committer builds the run off the worker and writes its blocks; the
    // next checkpoint writes its descriptor.
    const SmoothMap<Hash128, int32_t>* spill = nullptr;
    uint64_t spill_run_no = 0;
    int64_t spill_wall_ms = 0;  // when the newest spilled id was recorded
    state::IdRun spill_run;
    std::string spill_descriptor;
    Status spill_status;
    std::atomic<SpillPhase> spill_phase{SpillPhase::kIdle};
    uint64_t cp_log_seq = 0;
    ShardMark cp_mark;  // the checkpoint in flight (the Kafka mode's changelog)
    uint64_t cp_logged = 0;
    Clock::time_point cp_started;  // when its snapshot began (its duration, for /metrics)
    Status cp_status;
    std::atomic<CheckpointPhase> cp_phase{CheckpointPhase::kIdle};
    // Scratch reused across groups.
    std::string block;
    std::vector<uint8_t> accepted;
    std::vector<Query*> deferred;              // tier listings that came mid-group
    std::vector<const ingest::Event*> events;  // the group's events, in order
    std::vector<Hash128> hashes;               // ... and their duplicate-index keys
    std::vector<uint64_t> user_hashes;
    std::vector<state::ForwardMark> group_marks;
    // Tier changes taken from the state and not yet in the feed: claimed
    // under cursors from changes_first on (0: not yet claimed) and, for the
    // time changes among them, a log block at changes_log_seq. A write that
    // failed is retried with the same cursors and block.
    std::vector<state::TierChange> changes;
    uint64_t changes_first = 0;
    std::string changes_block;
    uint64_t changes_log_seq = 0;
    std::vector<std::string> changes_values;
    uint64_t feed_position = 0;  // shard_seq of the last change in the feed
    // The Kafka mode: the changes written to the feed since the checkpoint
    // in flight began (encoded), which the next checkpoint exports with its
    // image (CheckpointImage::changes); cp_changes: those of the one in
    // flight, given back to unexported_changes if its commit fails.
    std::vector<std::string> unexported_changes;
    std::vector<std::string> cp_changes;
    // The Kafka mode: the shard's last committed checkpoint, and whether this
    // instance owns its partition (ClaimShard, ReleaseShard). A shard it does
    // not own takes no checkpoint: it keeps the changelog's newest, which a
    // later takeover then keeps instead of restoring.
    ShardMark committed;
    std::atomic<bool> owned{true};
    // The state's input position (the Kafka mode), for other threads.
    std::atomic<uint64_t> input_events{0};
    std::atomic<uint64_t> input_repartition{0};
    // Its forward marks (by source partition), for other threads.
    mutable Mutex marks_mu;
    std::vector<uint64_t> forward_marks ABSL_GUARDED_BY(marks_mu);
  };

  explicit Impl(const PipelineOptions& o) : options(o), disk(o.data_dir, o.min_free_bytes) {}
  ~Impl() { StopCommitter(); }

  PipelineOptions options;
  DiskWatermark disk;
  std::unique_ptr<state::Store> store;
  state::Store* store_raw = nullptr;  // what the workers' UserSources read through
  std::unique_ptr<ingest::RejectLog> reject_log;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<int64_t> watermark{kNoTs};
  std::atomic<int64_t> beyond_horizon_logged_ms{INT64_MIN / 2};  // rate limit of its warning
  std::atomic<int64_t> inflight{0};
  std::atomic<bool> stopping{false};
  // A failed store (Store::failing()) refuses ingest until the committer has
  // recovered it (TendStore), with every worker parked at the top of its
  // loop meanwhile when a database must be reopened.
  std::atomic<bool> workers_running{false};
  std::atomic<bool> pause_requested{false};
  std::atomic<uint32_t> parked{0};
  struct StoreRecovery {  // the committer's alone
    bool failing = false;
    Clock::time_point since;
    Clock::time_point next_attempt;
    std::chrono::milliseconds backoff{0};
    int attempts = 0;
    bool told_fds = false;
  } recovery_state;
  RecoveryStats recovery;
  // Commits the workers' checkpoints off their threads, one at a time.
  // A checkpoint to commit, or (spill) a run of event ids to write.
  struct CommitJob {
    Worker* w = nullptr;  // null: stop
    bool spill = false;
  };
  moodycamel::BlockingConcurrentQueue<CommitJob> commits;
  std::thread committer;
  // The job the committer is handling, until its outcome is given (a failed
  // committer gives it). The committer's alone.
  CommitJob in_hand;
  bool rules_changed = false;  // re-evaluate every user's tier during recovery
  std::string rules_text;      // the rules, as a change caused by them names them
  // Held shared by the feed's readers (ReadChanges, on HTTP threads; the
  // webhooks' Get/PutConsumerState) and exclusively while the committer
  // reopens the store (TendStore).
  std::shared_mutex store_readers_mu;
  // The change feed (null when the change log is off).
  std::unique_ptr<ChangeFeed> feed;
  std::atomic<uint64_t> changes_trimmed{0};  // retention: the feed starts after it
  Clock::time_point next_retention = Clock::now();
  bool closed = false;
  // Figures for /metrics (GetStats). Checkpoints are timed and sized by
  // the committer as it commits them; RocksDB's figures are sampled by it
  // too, between jobs, at most once a second (SampleStoreFigures): the
  // committer is the one thread that may call the store while it recovers.
  LatencyHistogram checkpoint_seconds{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  std::atomic<uint64_t> checkpoint_failures{0};
  std::atomic<uint64_t> last_checkpoint_bytes{0};
  Clock::time_point next_store_sample;  // the committer's
  mutable Mutex figures_mu;
  state::StoreFigures store_figures ABSL_GUARDED_BY(figures_mu);
  uint64_t changes_bytes ABSL_GUARDED_BY(figures_mu) = 0;
  // A part of the pipeline failed (an exception escaped a worker or the
  // committer): ingest is refused until a restart, and `part_failure` says why.
  std::atomic<bool> failed{false};
  mutable Mutex error_mu;
  Status first_worker_error ABSL_GUARDED_BY(error_mu);
  Status part_failure ABSL_GUARDED_BY(error_mu);  // the first failed part

  // "tierstream: <message>" at `level`, unless options.log_to_stderr is off.
  void LogAt(LogLevel level, const char* fmt, ...) const __attribute__((format(printf, 3, 4)));

  int64_t WallNow() const {
    if (options.wall_clock) return options.wall_clock();
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int32_t Today() const {
    int64_t t = watermark.load(std::memory_order_acquire);
    return t == kNoTs ? kNoDay : DayOf(t, options.config.utc_offset_ms);
  }
  size_t ResidentLimit() const {
    return std::max<size_t>(16, options.max_resident_users / workers.size());
  }
  int32_t OwnDay(const Worker* w) const {
    const int64_t t = w->state.max_ts();
    return t == kNoTs ? kNoDay : DayOf(t, options.config.utc_offset_ms);
  }

  // ---- batch.cc
  // Counts down one shard's part of `b`; the last part answers and deletes it.
  void CompletePart(Batch* b) {
    if (internal::BatchAccess::pending(b).fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    FinishBatch(b);
  }
  void FinishBatch(Batch* b);
  // Why a refused batch was refused, for its answer.
  std::string RefusalMessage() const;

  // ---- shard_worker.cc
  void Run(Worker* w);
  // Processes and completes batches[0, n), nulling each as it completes it.
  void ProcessGroup(Worker* w, Batch** batches, size_t n);
  // Makes the state's input position visible to InputPositionOf.
  static void PublishInputPosition(Worker* w) {
    w->input_events.store(w->state.input_position().events, std::memory_order_release);
    w->input_repartition.store(w->state.input_position().repartition, std::memory_order_release);
    MutexLock lock(&w->marks_mu);
    w->forward_marks = w->state.forward_marks();
  }
  // Makes the users of the group's accepted events resident (ShardState::PrepareUser).
  Status PrepareUsers(Worker* w);
  void Housekeep(Worker* w, bool force_checkpoint);
  // Logs at most once a minute that events older than the duplicate horizon
  // were accepted (their originals, if any, may have been forgotten).
  void WarnBeyondHorizon(Worker* w, uint64_t n);

  // ---- committer.cc
  // Checkpoints: StartCheckpoint begins a snapshot of what changed (its
  // meta and log position as of that moment); ContinueSnapshot encodes it in
  // slices between batches and, once complete, hands it to the committer
  // thread; FinishCheckpoint (on the worker) applies the outcome once
  // committed — true if there was one to finish, false if none is in flight
  // or (wait = false) it is still being snapshot or committed. Checkpoint
  // does all three and waits. StartCheckpoint's caller has written the
  // state's tier changes (FlushChanges): the meta counts them.
  void StartCheckpoint(Worker* w);
  void ContinueSnapshot(Worker* w, size_t budget);
  bool FinishCheckpoint(Worker* w, bool wait, Status* status);
  Status Checkpoint(Worker* w);
  // Event ids over their memory budget spill into a run beside checkpoints:
  // StartSpill freezes them and hands them to the committer, which writes
  // the run's blocks (WriteSpill); FinishSpill takes the run on the worker
  // once written (wait: until then) — true if there was one.
  void StartSpill(Worker* w);
  void WriteSpill(Worker* w);
  bool FinishSpill(Worker* w, bool wait);
  void RunCommitter();
  void StopCommitter();
  // On the committer: samples RocksDB's figures once `next_store_sample`
  // has passed (a few microseconds; stale by at most a second, or by a long
  // commit).
  void SampleStoreFigures();

  // ---- failed_store.cc
  // Waits, at the top of the worker's loop, while the committer recovers the
  // store, answering /healthz's queries meanwhile.
  void Park(Worker* w);
  // On the committer, between jobs: once the store has failed, brings it back
  // (Store::Recover) with every worker parked, retrying with backoff.
  void TendStore();

  // ---- change_log.cc
  // Writes the changes the state made since the last call (and any whose
  // write failed before) to the feed; time changes go into the shard's log
  // in the same write, and so does `events_block` when given: the group's
  // log block, after them (appended alone when there are none). On error
  // the changes stay, and the block is not written (the caller refuses its
  // events).
  Status FlushChanges(Worker* w, std::string_view events_block = {});
  // Whether the changes the state holds should be written now rather than
  // with the next group's log block: the worker is idle, or they are many.
  bool ChangesDue(Worker* w) const;
  static constexpr size_t kChangesPerWrite = 4096;
  // A group at least this large does not carry the last group's changes in
  // its log write: they would wait for its whole duplicate pass (tens of ms
  // under load); they get a write of their own before it, one per group of
  // this many events at most. (Serve only: a replay acknowledges nothing.)
  static constexpr size_t kOwnChangesWriteFrom = 4096;
  // Recovery: the changes replay made again, less those the feed holds.
  Status RepublishReplayed(Worker* w);
  // On the committer, now and then: drops changes past retention.
  void TendChangeRetention();

  // ---- failed_part.cc
  // The entries of the workers' threads and of the committer's: what escapes
  // Run or RunCommitter is caught and recorded (Fail), and the thread then
  // refuses what it is sent until Close: batches complete as failed,
  // queries are answered with the failure, checkpoints and spills as failed.
  void WorkerMain(Worker* w);
  void CommitterMain();
  // Logs that `part` failed with `what`; the first failure becomes
  // `part_failure` (and first_worker_error, if none yet) and calls on_failure.
  void Fail(const std::string& part, const std::string& what);
  // The first failure; ok while no part failed.
  Status Failure() const;
  void RefuseUntilClosed(Worker* w);
  // Answers `q` on behalf of a failed shard: with the failure.
  void RefuseQuery(std::unique_ptr<Query> q);
  void RefuseCommits();

  // ---- recovery.cc
  Status Recover();
  // Loads a shard's checkpoint from the store (Recover, ClaimShard).
  Status LoadShard(Worker* w);
  // The state settings of Open, on a fresh state of w.
  void ConfigureState(Worker* w);
  // Hands what a commit of w wrote to options.on_checkpoint.
  static constexpr size_t kImageChunkBytes = 512u << 10;
  void Export(Worker* w, const state::Store::Checkpoint& written, bool complete);
  // ClaimShard's work on the shard's worker.
  Status Claim(Worker* w, uint64_t generation, const Pipeline::RebuildFn& rebuild,
               const Pipeline::BaseFn& publish_base);
  Status Retier();
  // Applies a journaled event as of `t_ms`, the T it was applied at live.
  void ApplyLogged(Worker* w, const ingest::Event& e, int64_t t_ms);

  // ---- queries.cc
  // Sends one query of `kind` to every worker; the last answer completes `g`.
  void Broadcast(Query::Kind kind, const std::shared_ptr<Query::Gather>& g,
                 const std::string& after = {});
  // Answers pending queries. Mid-group (`mid_group`: some of the group's
  // logged events are not applied yet) a tier listing, which checkpoints,
  // waits for the end of the group; profiles and KPIs are answered at once
  // (the state is consistent between any two events). While the worker is
  // parked (`stats_only`: the store is being reopened) only the figures of
  // /healthz are, which read nothing from it; the others wait.
  // While `applying` (events of the group are being applied) KPIs wait too:
  // their sweep would put time changes between the group's own, which the
  // journal could not replay in that order.
  void AnswerQueries(Worker* w, bool mid_group = false, bool stats_only = false,
                     bool applying = false);
  // Answers a KPI, tier page or stats query: the last shard's share came.
  void FinishGather(Query::Kind kind, Query::Gather* g);
  // (user_id, profile when `with_profiles`) of at most `limit` members of
  // `tier` after `after`, in id order, as of day `today` and T `t`; *error
  // set if the store could not be read (the members are then partial).
  std::vector<std::pair<std::string, ProfileReport>> ListTierOf(Worker* w, state::Tier tier,
                                                                const std::string& after,
                                                                size_t limit, bool with_profiles,
                                                                int32_t today, int64_t t,
                                                                Status* error);
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_PIPELINE_IMPL_H_
