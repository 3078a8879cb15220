#include "pipeline/pipeline.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <concurrentqueue/blockingconcurrentqueue.h>

#include "common/fd_limit.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/time.h"
#include "ingest/event_codec.h"
#include "state/kpis.h"
#include "state/shard_state.h"
#include "state/store.h"

namespace tierstream::pipeline {

using ingest::Event;
using ingest::EventType;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kEventSeed = 0;   // duplicate index seed for own events
constexpr uint64_t kCreditSeed = 1;  // ... and for referral credits
constexpr size_t kMaxGroupBatches = 64;
constexpr size_t kMaxGroupEvents = 64 * 1024;
// What one event id costs in the exact in-memory map (hash map slot and
// control byte at typical load, by-day list, new-id list).
constexpr size_t kBytesPerMemoryId = 80;
constexpr int kCheckpointIdle = 0;
constexpr int kCheckpointCommitting = 1;
constexpr int kCheckpointCommitted = 2;
constexpr int kCheckpointSnapshotting = 3;  // the worker is still encoding users into it
constexpr int kSpillIdle = 0;
constexpr int kSpillWriting = 1;
constexpr int kSpillWritten = 2;

void AtomicMax(std::atomic<int64_t>* a, int64_t v) {
  int64_t cur = a->load(std::memory_order_relaxed);
  while (v > cur && !a->compare_exchange_weak(cur, v, std::memory_order_acq_rel)) {
  }
}

std::string ShardMetaKey(uint32_t shard) { return "shard/" + std::to_string(shard); }

// The user index (Store::FindUsersByHash) is complete for a shard when its
// stamp, written with every shard meta, is the hash of that meta: a data dir
// from before the index, or checkpointed by such a binary since, has none or
// another, and its users are indexed again at the next start.
std::string UserIndexStampKey(uint32_t shard) { return "user_index/" + std::to_string(shard); }
std::string UserIndexStamp(std::string_view meta) { return std::to_string(Hash64(meta)); }

std::string RulesKey(const state::TierRules& r) {
  return std::to_string(r.high_value_spend_fen) + "/" + std::to_string(r.high_value_repeat_orders) +
         "/" + std::to_string(r.new_days) + "/" + std::to_string(r.active_interactions_7d);
}

}  // namespace

// ---- BatchBuilder ------------------------------------------------------------

BatchBuilder::BatchBuilder(Batch* batch, ingest::RejectLog* reject_log, std::string source)
    : batch_(batch), reject_log_(reject_log), source_(std::move(source)) {}

BatchBuilder::~BatchBuilder() { WriteRejects(); }

void BatchBuilder::WriteRejects() {
  if (reject_log_ != nullptr) {
    reject_log_->Write(rejects_, reject_count_);
    reject_log_->Write({}, rejects_skipped_);
  }
  rejects_.clear();
  reject_count_ = 0;
  rejects_skipped_ = 0;
}

void BatchBuilder::OnEvent(const Event& event) {
  const auto shards = static_cast<uint32_t>(batch_->per_shard.size());
  batch_->per_shard[ShardOf(event.user_id, shards)].push_back(event);
  ++batch_->events;
  if (event.type == EventType::kJoin && !event.referrer_id.empty() &&
      event.referrer_id != event.user_id) {
    Event credit = event;
    credit.type = EventType::kReferralCredit;
    credit.user_id = event.referrer_id;
    credit.referrer_id = event.user_id;
    batch_->per_shard[ShardOf(credit.user_id, shards)].push_back(credit);
  }
}

void BatchBuilder::OnReject(uint64_t line, std::string_view reason, std::string_view raw) {
  ++batch_->rejected;
  if (batch_->errors.size() < kMaxErrorsListed) {
    batch_->errors.push_back(ingest::LineError{line, std::string(reason)});
  }
  if (reject_log_ == nullptr) return;
  if (reject_log_->full()) {  // only counted: not worth formatting
    ++rejects_skipped_;
    return;
  }
  ingest::RejectLog::Format(source_, line, reason, raw, &rejects_);
  ++reject_count_;
  if (rejects_.size() >= 64 * 1024) WriteRejects();
}

// ---- Pipeline internals --------------------------------------------------------

namespace {

struct Query {
  enum class Kind { kUser, kKpis, kListTier, kStats } kind;
  // kUser
  std::string user_id;
  std::function<void(std::optional<ProfileReport>)> user_done;
  // kKpis and kListTier: shared across shards, the last one answers.
  struct Gather {
    std::atomic<uint32_t> pending{0};
    std::mutex mu;
    state::KpiPartial kpis;
    std::vector<std::pair<std::string, ProfileReport>> members;  // profile when with_profiles
    int64_t as_of = kNoTs;
    state::Tier tier = state::Tier::kNone;
    size_t limit = 0;
    bool with_profiles = false;
    std::function<void(TierPage)> page_done;
    std::function<void(KpiReport)> kpis_done;
    PipelineStats stats;
    std::function<void(PipelineStats)> stats_done;
  };
  std::shared_ptr<Gather> gather;
  std::string after;
};

struct Task {
  Batch* batch = nullptr;  // null: a wake-up for the query queue or shutdown
};

}  // namespace

// Reloads evicted users and spilled event-id blocks of one shard from the store.
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
  struct Worker {
    Worker(uint32_t shard_id, const state::Config& config, state::Store** store)
        : id(shard_id), source(store, shard_id), state(shard_id, config, &source, &source) {}
    uint32_t id;
    StoreUserSource source;
    state::ShardState state;
    moodycamel::BlockingConcurrentQueue<Task> queue;
    moodycamel::ConcurrentQueue<Query*> queries;
    std::thread thread;
    uint64_t log_seq = 0;         // last block appended to this shard's log
    uint64_t checkpoint_seq = 0;  // last block covered by a checkpoint
    Clock::time_point last_checkpoint = Clock::now();
    // Seen blobs are numbered by this counter (the committer's while a
    // checkpoint is in flight; a spill reads it on the worker).
    std::atomic<uint64_t> seen_sub{0};
    size_t processed_since_housekeep = 0;  // events of the groups since
    uint64_t logged_since_checkpoint = 0;  // events appended to the log since
    // The checkpoint being committed by the committer thread, if any: the
    // worker builds it (a consistent snapshot) and goes on applying events.
    std::unique_ptr<state::Store::Checkpoint> cp;
    const std::vector<std::pair<Hash128, int32_t>>* cp_new_seen = nullptr;  // read by the committer
    int64_t cp_wall_ms = 0;  // the wall clock at the snapshot
    std::vector<std::pair<int32_t, int64_t>>
        cp_bucket_walls;  // ... and of each arrival day's newest id
    // The event ids being spilled into a run, beside checkpoints: the
    // committer builds the run off the worker and writes its blocks; the
    // next checkpoint writes its descriptor.
    const absl::flat_hash_map<Hash128, int32_t>* spill = nullptr;
    uint64_t spill_run_no = 0;
    int64_t spill_wall_ms = 0;  // when the newest spilled id was recorded
    state::IdRun spill_run;
    std::string spill_descriptor;
    Status spill_status;
    std::atomic<int> spill_phase{0};  // kSpillIdle / Writing / Written
    uint64_t cp_log_seq = 0;
    uint64_t cp_logged = 0;
    Status cp_status;
    std::atomic<int> cp_phase{0};  // kCheckpointIdle / Snapshotting / Committing / Committed
    // Scratch reused across groups.
    std::string block;
    std::vector<uint8_t> accepted;
    std::vector<Query*> deferred;      // tier listings that came mid-group
    std::vector<const Event*> events;  // the group's events, in order
    std::vector<Hash128> hashes;       // ... and their duplicate-index keys
    std::vector<uint64_t> user_hashes;
  };

  PipelineOptions options;
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
  mutable std::atomic<int64_t> disk_checked_ms{INT64_MIN / 2};
  mutable std::atomic<bool> disk_low{false};
  RecoveryStats recovery;
  // Commits the workers' checkpoints off their threads, one at a time.
  // A checkpoint to commit, or (spill) a run of event ids to write.
  struct CommitJob {
    Worker* w = nullptr;  // null: stop
    bool spill = false;
  };
  moodycamel::BlockingConcurrentQueue<CommitJob> commits;
  std::thread committer;
  bool rules_changed = false;  // re-evaluate every user's tier during recovery
  bool closed = false;
  Status first_worker_error;
  std::mutex error_mu;

  void Log(const char* fmt, auto... args) {
    if (!options.log_to_stderr) return;
    // Every message of the pipeline is either a failure ("... failed") or
    // an informational figure; the level follows so that a grep for ERROR
    // finds the failures.
    const LogLevel level =
        std::strstr(fmt, "failed") != nullptr ? LogLevel::kError : LogLevel::kInfo;
    const std::string prefixed = std::string("tierstream: ") + fmt;
    ::tierstream::Log(level, prefixed.c_str(), args...);
  }
  void LogAt(LogLevel level, const char* fmt, auto... args) {
    if (!options.log_to_stderr) return;
    const std::string prefixed = std::string("tierstream: ") + fmt;
    ::tierstream::Log(level, prefixed.c_str(), args...);
  }

  // Free space of the data dir's file system, sampled at most every 50 ms.
  bool DiskLow() const {
    const int64_t now =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
            .count();
    if (now - disk_checked_ms.load(std::memory_order_relaxed) >= 50) {
      disk_checked_ms.store(now, std::memory_order_relaxed);
      struct statvfs fs;
      if (::statvfs(options.data_dir.c_str(), &fs) == 0) {
        const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
        const bool low = free_bytes < options.min_free_bytes;
        if (low != disk_low.load()) {
          ::tierstream::Log(low ? LogLevel::kWarning : LogLevel::kInfo,
                            "tierstream: %s: %llu bytes free; ingest %s", options.data_dir.c_str(),
                            static_cast<unsigned long long>(free_bytes),
                            low ? "refused until space returns" : "resumes");
        }
        disk_low.store(low, std::memory_order_relaxed);
      }
    }
    return disk_low.load(std::memory_order_relaxed);
  }

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

  Status Recover();
  Status Retier();
  // Sends one query of `kind` to every worker; the last answer completes `g`.
  void Broadcast(Query::Kind kind, const std::shared_ptr<Query::Gather>& g,
                 const std::string& after = {}) {
    g->pending.store(static_cast<uint32_t>(workers.size()));
    for (auto& w : workers) {
      auto* q = new Query{};
      q->kind = kind;
      q->gather = g;
      q->after = after;
      w->queries.enqueue(q);
      w->queue.enqueue(Task{nullptr});
    }
  }
  void Run(Worker* w);
  // Waits, at the top of the worker's loop, while the committer recovers the
  // store, answering /healthz's queries meanwhile.
  void Park(Worker* w);
  // On the committer, between jobs: once the store has failed, brings it back
  // (Store::Recover) with every worker parked, retrying with backoff.
  void TendStore();
  // Why a refused batch was refused, for its answer.
  std::string RefusalMessage() const;
  void ProcessGroup(Worker* w, Batch** batches, size_t n);
  void CompletePart(Batch* b);
  // Answers pending queries. Mid-group (`mid_group`: some of the group's
  // logged events are not applied yet) a tier listing, which checkpoints,
  // waits for the end of the group; profiles and KPIs are answered at once
  // (the state is consistent between any two events). While the worker is
  // parked (`stats_only`: the store is being reopened) only the figures of
  // /healthz are, which read nothing from it; the others wait.
  void AnswerQueries(Worker* w, bool mid_group = false, bool stats_only = false);
  void Housekeep(Worker* w, bool force_checkpoint);
  // Checkpoints: StartCheckpoint begins a snapshot of what changed (its
  // meta and log position as of that moment); ContinueSnapshot encodes it in
  // slices between batches and, once complete, hands it to the committer
  // thread; FinishCheckpoint (on the worker) applies the outcome once
  // committed — true if there was one to finish, false if none is in flight
  // or (wait = false) it is still being snapshot or committed. Checkpoint
  // does all three and waits.
  void StartCheckpoint(Worker* w);
  void ContinueSnapshot(Worker* w, size_t budget);
  bool FinishCheckpoint(Worker* w, bool wait, Status* status);
  Status Checkpoint(Worker* w);
  void RunCommitter();
  // Event ids over their memory budget spill into a run beside checkpoints:
  // StartSpill freezes them and hands them to the committer, which writes
  // the run's blocks (WriteSpill); FinishSpill takes the run on the worker
  // once written (wait: until then) — true if there was one.
  void StartSpill(Worker* w);
  void WriteSpill(Worker* w);
  bool FinishSpill(Worker* w, bool wait);
  void StopCommitter() {
    if (!committer.joinable()) return;
    commits.enqueue(CommitJob{});
    committer.join();
  }
  ~Impl() { StopCommitter(); }
  // (user_id, profile when `with_profiles`) of at most `limit`
  // members of `tier` after `after`, in id order, as of day `today` and T `t`.
  std::vector<std::pair<std::string, ProfileReport>> ListTierOf(Worker* w, state::Tier tier,
                                                                const std::string& after,
                                                                size_t limit, bool with_profiles,
                                                                int32_t today, int64_t t);
  void ApplyLogged(Worker* w, const Event& e);
  // Logs at most once a minute that events older than the duplicate horizon
  // were accepted (their originals, if any, may have been forgotten).
  void WarnBeyondHorizon(Worker* w, uint64_t n) {
    const int64_t now = WallNow();
    int64_t last = beyond_horizon_logged_ms.load(std::memory_order_relaxed);
    if (now - last < 60'000 ||
        !beyond_horizon_logged_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      return;
    }
    Log("shard %u: accepted %llu events older than the duplicate horizon (%d days of event time "
        "and of wall clock); had they been sent before, they are counted again. Total: %lld "
        "(events_beyond_horizon in /healthz)",
        w->id, static_cast<unsigned long long>(n), options.config.dedup_horizon_days,
        static_cast<long long>(w->state.events_beyond_horizon()));
  }
};

void Pipeline::Impl::CompletePart(Batch* b) {
  if (b->pending_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  BatchOutcome outcome;
  outcome.accepted = b->accepted_.load();
  outcome.duplicates = b->duplicates_.load();
  outcome.rejected = b->rejected;
  outcome.errors = std::move(b->errors);
  if (b->failed_.load()) outcome.status = Status::Unavailable(RefusalMessage());
  inflight.fetch_sub(static_cast<int64_t>(b->weight_), std::memory_order_acq_rel);
  auto done = std::move(b->done_);
  delete b;  // owned by the pending counter since Submit()
  if (done) done(std::move(outcome));
}

std::string Pipeline::Impl::RefusalMessage() const {
  if (DiskLow()) return "disk space is below the watermark; ingest resumes when space returns";
  const std::string failure = store->failure();
  if (failure.empty()) return "the store could not make the batch durable";
  return "the store could not make the batch durable (" + failure +
         "); ingest resumes by itself once the store recovers";
}

void Pipeline::Impl::ProcessGroup(Worker* w, Batch** batches, size_t n) {
  state::ShardState& st = w->state;
  w->block.clear();
  ingest::BeginLogBlock(&w->block);
  w->accepted.clear();
  int64_t group_max_ts = kNoTs;
  size_t accepted_count = 0;
  st.SetWallClock(WallNow());
  // 1. Drop duplicates; encode the rest for the log. The arrival day counts
  // this group's own events too (the very first group has no T yet).
  int64_t arrival_ts = watermark.load(std::memory_order_acquire);
  w->events.clear();
  w->hashes.clear();
  w->user_hashes.clear();
  for (size_t i = 0; i < n; ++i) {
    for (const Event& e : batches[i]->per_shard[w->id]) {
      arrival_ts = std::max(arrival_ts, e.ts_ms);
      w->events.push_back(&e);
      w->hashes.push_back(
          HashId128(e.event_id, e.type == EventType::kReferralCredit ? kCreditSeed : kEventSeed));
      w->user_hashes.push_back(state::ShardState::UserHash(e.user_id));
    }
  }
  const int32_t arrival_day =
      arrival_ts == kNoTs ? kNoDay : DayOf(arrival_ts, options.config.utc_offset_ms);
  const size_t count = w->events.size();
  w->processed_since_housekeep += count;
  // What the group counts besides its events is logged with them.
  ingest::LogBlockCounts counts;
  for (size_t i = 0; i < n; ++i) {
    if (batches[i]->reject_shard_ == w->id) counts.rejected += batches[i]->rejected;
  }
  const size_t new_seen_mark = st.NewSeenMark();
  constexpr size_t kSeenAhead = 8;
  for (size_t j = 0; j < count; ++j) {
    if (j + kSeenAhead < count) st.PrefetchSeen(w->hashes[j + kSeenAhead]);
    // Nothing is applied in this pass, so queries may be answered in it too.
    if ((j & 1023) == 1023 && w->queries.size_approx() > 0) AnswerQueries(w, true);
    const Event& e = *w->events[j];
    const bool fresh = st.MarkSeenHash(w->hashes[j], e.ts_ms, arrival_day);
    w->accepted.push_back(fresh ? 1 : 0);
    const bool credit = e.type == EventType::kReferralCredit;
    if (!fresh) {
      counts.duplicates += credit ? 0 : 1;
      continue;
    }
    if (!credit && st.BeyondHorizon(e.ts_ms)) ++counts.beyond_horizon;
    ++accepted_count;
    group_max_ts = std::max(group_max_ts, e.ts_ms);
    if (options.write_log) ingest::AppendEventRecord(e, &w->block);
  }
  // 2. Make them durable before anything is applied or acknowledged. If
  // the duplicate check or the log write failed, nothing of the group counts.
  bool ok = true;
  Status s = st.TakeIdError();
  if (!s.ok()) {
    Log("shard %u: duplicate index read failed, batch refused: %s", w->id, s.ToString().c_str());
  } else if (options.write_log &&
             (accepted_count > 0 || counts.duplicates > 0 || counts.rejected > 0)) {
    ingest::SetLogBlockCounts(counts, &w->block);
    s = store->AppendLog(w->id, w->log_seq + 1, w->block, options.fsync);
    if (s.ok()) {
      ++w->log_seq;
      w->logged_since_checkpoint += accepted_count;
    } else {
      Log("shard %u: log write failed, batch refused: %s", w->id, s.ToString().c_str());
    }
  }
  if (!s.ok()) {
    // The store now says it is failing: new batches are refused at once
    // until the committer has recovered it (TendStore).
    ok = false;
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
      for (const Event& e : batches[i]->per_shard[w->id]) {
        const bool credit = e.type == EventType::kReferralCredit;
        if (w->accepted[k++]) st.UnmarkSeen(e.event_id, credit ? kCreditSeed : kEventSeed);
      }
      batches[i]->failed_.store(true);
    }
    st.TruncateNewSeen(new_seen_mark);
  }
  // 3. Apply.
  if (ok) {
    st.CountIngest(0, counts.rejected, counts.beyond_horizon);  // duplicates: below, per batch
    if (counts.beyond_horizon > 0) WarnBeyondHorizon(w, counts.beyond_horizon);
    if (group_max_ts != kNoTs) AtomicMax(&watermark, group_max_ts);
    const int32_t today = Today();
    // Users' states are fetched ahead in three stages (see ShardState).
    auto prefetch = [&](size_t j, int stage) {
      if (j >= count || !w->accepted[j]) return;
      const uint64_t user = w->user_hashes[j];
      if (stage == 0) {
        st.PrefetchUser(user);
      } else {
        st.PrefetchUserState(user, stage == 2);
      }
    };
    for (size_t j = 0; j < 12 && j < count; ++j) {
      prefetch(j, 0);
      if (j < 8) prefetch(j, 1);
      if (j < 4) prefetch(j, 2);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
      uint64_t acc = 0, dup = 0;
      for (const Event& e : batches[i]->per_shard[w->id]) {
        const bool credit = e.type == EventType::kReferralCredit;
        prefetch(k + 12, 0);
        prefetch(k + 8, 1);
        prefetch(k + 4, 2);
        // Queries do not wait for a whole group (up to 64k events).
        if ((k & 1023) == 1023 && w->queries.size_approx() > 0) AnswerQueries(w, true);
        if (w->accepted[k++]) {
          st.Apply(e, today);
          acc += credit ? 0 : 1;
        } else if (!credit) {
          st.CountDuplicate();
          ++dup;
        }
      }
      batches[i]->accepted_.fetch_add(acc, std::memory_order_relaxed);
      batches[i]->duplicates_.fetch_add(dup, std::memory_order_relaxed);
    }
  }
  for (size_t i = 0; i < n; ++i) CompletePart(batches[i]);
}

void Pipeline::Impl::AnswerQueries(Worker* w, bool mid_group, bool stats_only) {
  Query* q;
  for (;;) {
    if (!mid_group && !stats_only && !w->deferred.empty()) {
      q = w->deferred.back();
      w->deferred.pop_back();
    } else if (!w->queries.try_dequeue(q)) {
      break;
    }
    if ((mid_group && q->kind == Query::Kind::kListTier) ||
        (stats_only && q->kind != Query::Kind::kStats)) {
      w->deferred.push_back(q);
      continue;
    }
    std::unique_ptr<Query> owned(q);
    const int64_t t = watermark.load(std::memory_order_acquire);
    const int32_t today = t == kNoTs ? kNoDay : DayOf(t, options.config.utc_offset_ms);
    switch (q->kind) {
      case Query::Kind::kUser: {
        ProfileReport r;
        r.as_of = t;
        if (today != kNoDay && w->state.GetProfile(q->user_id, today, &r.profile)) {
          q->user_done(std::move(r));
        } else {
          q->user_done(std::nullopt);
        }
        break;
      }
      case Query::Kind::kStats: {
        auto& g = *q->gather;
        {
          std::lock_guard<std::mutex> lock(g.mu);
          g.stats.resident_users += w->state.resident_users();
          g.stats.reloads += w->state.reloads();
          g.stats.warm_reloads += w->state.warm_reloads();
          g.stats.warm_users += w->state.warm_users();
          g.stats.warm_bytes += w->state.warm_bytes();
          g.stats.dirty_users += w->state.dirty_count();
          g.stats.remembered_ids += w->state.seen_count();
          g.stats.spilled_ids += w->state.spilled_ids();
          g.stats.id_runs += w->state.id_runs();
          g.stats.events_beyond_horizon += static_cast<uint64_t>(w->state.events_beyond_horizon());
        }
        if (g.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          g.stats.shards = workers.size();
          g.stats.max_resident_users = ResidentLimit() * workers.size();
          g.stats.events_in_flight = inflight.load();
          g.stats_done(std::move(g.stats));
        }
        break;
      }
      case Query::Kind::kKpis:
      case Query::Kind::kListTier: {
        auto& g = *q->gather;
        if (today != kNoDay) w->state.Sweep(today, SIZE_MAX);  // tiers exactly as of T
        std::vector<std::pair<std::string, ProfileReport>> members;
        if (q->kind == Query::Kind::kListTier) {
          // One more than the page: whether another member follows it.
          members = ListTierOf(w, g.tier, q->after, g.limit + 1, g.with_profiles, today, t);
        }
        {
          std::lock_guard<std::mutex> lock(g.mu);
          if (q->kind == Query::Kind::kKpis) {
            g.kpis.Add(w->state.Kpis(today));
            g.as_of = std::max(g.as_of, t);
          } else {
            g.members.insert(g.members.end(), std::make_move_iterator(members.begin()),
                             std::make_move_iterator(members.end()));
          }
        }
        if (g.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          if (q->kind == Query::Kind::kKpis) {
            g.kpis_done(KpiReport{g.kpis, g.as_of});
          } else {
            // Each shard gave its first limit + 1: the first limit + 1 of
            // the union are among them.
            std::sort(g.members.begin(), g.members.end(),
                      [](const auto& a, const auto& b) { return a.first < b.first; });
            TierPage page;
            page.more = g.members.size() > g.limit;
            if (page.more) g.members.resize(g.limit);
            for (auto& [id, profile] : g.members) {
              page.user_ids.push_back(std::move(id));
              if (g.with_profiles) page.profiles.push_back(std::move(profile));
            }
            g.page_done(std::move(page));
          }
        }
        break;
      }
    }
  }
}

// The members of one tier in id order, evicted ones included: the shard is
// checkpointed first, so that its users' persisted tiers are current, and
// then read in key order from the store.
std::vector<std::pair<std::string, ProfileReport>> Pipeline::Impl::ListTierOf(
    Worker* w, state::Tier tier, const std::string& after, size_t limit, bool with_profiles,
    int32_t today, int64_t t) {
  std::vector<std::pair<std::string, ProfileReport>> members;
  if (w->state.dirty_count() > 0 ||
      w->cp_phase.load(std::memory_order_acquire) != kCheckpointIdle) {
    Status s = Checkpoint(w);
    if (!s.ok())
      Log("shard %u: checkpoint before tier listing failed: %s", w->id, s.ToString().c_str());
  }
  if (with_profiles && today == kNoDay) return members;  // no event yet: no profiles either
  state::UserState user;
  Status s = store->ScanUsers(w->id, after, [&](std::string_view id, std::string_view bytes) {
    if (state::DecodeUserState(bytes, &user).ok() && user.tier == tier) {
      // Made from the stored state, which the checkpoint made current: the
      // listing does not load evicted users back into memory.
      ProfileReport r;
      if (with_profiles) r = ProfileReport{state::MakeProfile(id, user, today, options.config), t};
      members.emplace_back(id, std::move(r));
    }
    return members.size() < limit;
  });
  if (!s.ok()) Log("shard %u: tier listing failed: %s", w->id, s.ToString().c_str());
  return members;
}

void Pipeline::Impl::StartCheckpoint(Worker* w) {
  // About 100 bytes per user (key and encoding, twice: staged, then in the
  // batch) and 20 per new or spilled event id.
  const size_t expected = w->state.dirty_count() * 2 * 100 + w->state.NewSeenMark() * 20;
  w->cp = std::make_unique<state::Store::Checkpoint>(store.get(), expected);
  state::Store::Checkpoint* cp_ptr = w->cp.get();
  state::Store::Checkpoint& cp = *cp_ptr;
  const uint32_t shard = w->id;
  w->state.BeginSnapshot(
      [cp_ptr, shard](std::string_view id, std::string_view bytes) {
        cp_ptr->StageUser(shard, id, bytes);
      },
      [cp_ptr, shard](uint64_t hash, std::string_view id) {
        cp_ptr->PutUserIndex(shard, hash, id);
      });
  w->cp_new_seen = &w->state.DrainNewSeen();
  // Runs spilled since the last checkpoint become durable with this one;
  // the seen blobs they cover go (before any expired run is deleted: a run
  // may have expired already).
  w->state.DrainUnconfirmedRuns([&](const state::ShardState::UnconfirmedRun& run) {
    cp.PutIdRun(w->id, run.run_no, run.descriptor);
    for (int32_t day = run.first_day; day <= run.last_day; ++day) {
      cp.DeleteSeenUpTo(w->id, day, run.covers_sub);
    }
  });
  w->state.DrainExpiredRuns([&](uint64_t run_no) { cp.DeleteIdRun(w->id, run_no); });
  std::string meta;
  w->state.EncodeMeta(w->log_seq, &meta);
  cp.PutMeta(ShardMetaKey(w->id), meta);
  cp.PutMeta(UserIndexStampKey(w->id), UserIndexStamp(meta));
  // Persisted ids of days that expired in memory (past both horizons) go too.
  if (w->state.oldest_kept_day() != INT32_MIN)
    cp.DeleteSeenBefore(w->id, w->state.oldest_kept_day());
  w->cp_wall_ms = w->state.wall_clock();
  w->cp_bucket_walls = w->state.BucketWalls();
  w->cp_log_seq = w->log_seq;
  w->cp_logged = w->logged_since_checkpoint;
  w->cp_phase.store(kCheckpointSnapshotting, std::memory_order_release);
  w->last_checkpoint = Clock::now();
  ContinueSnapshot(w, options.snapshot_slice);
}

void Pipeline::Impl::ContinueSnapshot(Worker* w, size_t budget) {
  if (w->cp_phase.load(std::memory_order_acquire) != kCheckpointSnapshotting) return;
  if (!w->state.SnapshotStep(budget)) return;
  w->cp_phase.store(kCheckpointCommitting, std::memory_order_release);
  commits.enqueue(CommitJob{w, false});
}

bool Pipeline::Impl::FinishCheckpoint(Worker* w, bool wait, Status* status) {
  int phase = w->cp_phase.load(std::memory_order_acquire);
  if (phase == kCheckpointIdle) return false;
  if (phase == kCheckpointSnapshotting) {
    if (!wait) return false;
    ContinueSnapshot(w, SIZE_MAX);
    phase = kCheckpointCommitting;
  }
  if (phase == kCheckpointCommitting) {
    if (!wait) return false;
    w->cp_phase.wait(kCheckpointCommitting, std::memory_order_acquire);
  }
  Status s = w->cp_status;
  w->cp.reset();
  w->cp_phase.store(kCheckpointIdle, std::memory_order_relaxed);
  w->state.CheckpointDone(s.ok());
  if (s.ok()) {
    w->checkpoint_seq = w->cp_log_seq;
    w->logged_since_checkpoint -= w->cp_logged;
    // Only now are the evicted users' states safely on disk.
    const size_t limit = ResidentLimit();
    if (w->state.resident_users() > limit) w->state.EvictClean(limit - limit / 10);
  }
  *status = s;
  return true;
}

Status Pipeline::Impl::Checkpoint(Worker* w) {
  FinishSpill(w, true /*wait*/);  // no checkpoint while a spill is written (see Housekeep)
  Status s;
  if (FinishCheckpoint(w, true, &s) && !s.ok()) {
    Log("shard %u: checkpoint failed (will retry): %s", w->id, s.ToString().c_str());
  }
  StartCheckpoint(w);
  FinishCheckpoint(w, true, &s);
  return s;
}

void Pipeline::Impl::StartSpill(Worker* w) {
  w->spill = &w->state.FreezeIdsForSpill(w->seen_sub.load(std::memory_order_acquire),
                                         &w->spill_run_no, &w->spill_wall_ms);
  w->spill_phase.store(kSpillWriting, std::memory_order_release);
  commits.enqueue(CommitJob{w, true /*spill*/});
}

bool Pipeline::Impl::FinishSpill(Worker* w, bool wait) {
  int phase = w->spill_phase.load(std::memory_order_acquire);
  if (phase == kSpillIdle) return false;
  if (phase == kSpillWriting) {
    if (!wait) return false;
    w->spill_phase.wait(kSpillWriting, std::memory_order_acquire);
  }
  if (!w->spill_status.ok()) {
    Log("shard %u: spilling event ids failed (kept in memory): %s", w->id,
        w->spill_status.ToString().c_str());
  }
  w->state.SpillDone(w->spill_status.ok(), &w->spill_run, std::move(w->spill_descriptor));
  w->spill = nullptr;
  w->spill_run = state::IdRun();
  w->spill_descriptor.clear();
  w->spill_phase.store(kSpillIdle, std::memory_order_relaxed);
  return true;
}

void Pipeline::Impl::WriteSpill(Worker* w) {
  // The frozen map is only read here and by the worker's lookups.
  std::vector<std::pair<Hash128, int32_t>> entries(w->spill->begin(), w->spill->end());
  state::Store::Checkpoint blocks(store.get(), entries.size() * (state::kIdRunEntryBytes + 8));
  w->spill_run =
      state::IdRun::Build(w->spill_run_no, &entries, [&](uint32_t block, std::string_view bytes) {
        blocks.PutIdBlock(w->id, w->spill_run_no, block, bytes);
      });
  w->spill_run.set_max_wall_ms(w->spill_wall_ms);
  w->spill_descriptor.clear();
  w->spill_run.EncodeDescriptor(&w->spill_descriptor);
  // The blocks alone: until a checkpoint writes the descriptor they are
  // unreferenced (and deleted by recovery if none does).
  w->spill_status = store->Commit(&blocks, options.fsync);
  w->spill_phase.store(kSpillWritten, std::memory_order_release);
  w->spill_phase.notify_all();
  w->queue.enqueue(Task{nullptr});  // wakes the worker to take it
}

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
  if (stopping.load() || !workers_running.load()) {
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
  Status s = store->Recover(&reopened, &unusable);
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
  Log("store recovery failed (will retry): %s", s.ToString().c_str());
  r.next_attempt = Clock::now() + r.backoff;
  r.backoff = std::min(r.backoff * 2, std::chrono::milliseconds(1000));
}

void Pipeline::Impl::RunCommitter() {
  for (;;) {
    CommitJob job;
    // A failed store is tended between jobs, so the wait is short then.
    const bool got = commits.wait_dequeue_timed(
        job, std::chrono::milliseconds(store->failing() || recovery_state.failing ? 5 : 50));
    if (got && job.w == nullptr) {
      pause_requested.store(false, std::memory_order_release);
      return;
    }
    if (!got) {
      TendStore();
      continue;
    }
    Worker* w = job.w;
    if (job.spill) {
      WriteSpill(w);
      TendStore();
      continue;
    }
    if (w->cp_new_seen != nullptr) {
      // New ids go into one blob per day (read only here until the worker
      // finishes the checkpoint).
      absl::flat_hash_map<int32_t, std::string> by_day;
      for (const auto& [h, day] : *w->cp_new_seen) {
        std::string& blob = by_day[day];
        if (blob.empty()) {
          // Its ids were recorded no later than its day's newest (or than now).
          int64_t wall = w->cp_wall_ms;
          for (const auto& [d, ms] : w->cp_bucket_walls) {
            if (d == day) wall = ms;
          }
          state::ShardState::BeginSeenBlob(wall, &blob);
        }
        state::ShardState::AppendSeenId(h, &blob);
      }
      for (const auto& [day, packed] : by_day) {
        w->cp->PutSeen(w->id, day, w->seen_sub.fetch_add(1, std::memory_order_acq_rel) + 1, packed);
      }
    }
    w->cp_status = store->Commit(w->cp.get(), options.fsync);
    if (w->cp_status.ok() && w->cp_log_seq > 0) {
      Status trimmed = store->TrimLog(w->id, w->cp_log_seq);
      if (!trimmed.ok()) Log("shard %u: log trim failed: %s", w->id, trimmed.ToString().c_str());
    }
    w->cp_phase.store(kCheckpointCommitted, std::memory_order_release);
    w->cp_phase.notify_all();
    w->queue.enqueue(Task{nullptr});  // wakes the worker to finish it
    TendStore();
  }
}

void Pipeline::Impl::Housekeep(Worker* w, bool force_checkpoint) {
  const int32_t today = Today();
  if (today != kNoDay) {
    // A final checkpoint finishes the sweep: the next start begins as of T.
    w->state.Sweep(today, force_checkpoint ? SIZE_MAX : options.sweep_slice);
  }
  // Event ids expire by this shard's own newest event, not the global T:
  // other shards may run ahead, and a re-sent event must not lose its id
  // just because unrelated later traffic was processed first.
  const int32_t own_day = OwnDay(w);
  // Expiry and snapshots advance in slices that grow with the events
  // processed since the last call, so that they keep up with any ingest rate
  // while no step is ever long compared with the group before it.
  const size_t processed = std::exchange(w->processed_since_housekeep, 0);
  w->state.SetWallClock(WallNow());
  if (own_day != kNoDay) {
    w->state.ExpireSeen(
        own_day, force_checkpoint ? SIZE_MAX : std::max(options.expire_slice, 2 * processed));
  }
  ContinueSnapshot(w, std::max(options.snapshot_slice, processed));
  // Event ids over their memory budget spill into a run beside checkpoints
  // (the next checkpoint makes it durable); a final checkpoint waits for a
  // spill in flight, so that it confirms its run.
  FinishSpill(w, force_checkpoint);
  Status s;
  if (FinishCheckpoint(w, force_checkpoint, &s) && !s.ok()) {
    Log("shard %u: checkpoint failed (will retry): %s", w->id, s.ToString().c_str());
  }
  // A spill starts between checkpoints (the blobs of one in flight would
  // race the freeze), before the next one may start.
  // A failed store refuses writes until it is recovered: checkpoints and
  // spills wait (a final checkpoint still tries, and reports).
  const bool store_failing = store->failing();
  if (!force_checkpoint && !store_failing && w->state.WantsSpill() &&
      w->spill_phase.load(std::memory_order_acquire) == kSpillIdle &&
      w->cp_phase.load(std::memory_order_acquire) == kCheckpointIdle) {
    StartSpill(w);
  }
  // Users changed since the snapshot cannot be evicted: far over the bound,
  // the worker checkpoints and evicts before it takes more events.
  if (!store_failing && w->state.resident_users() > ResidentLimit() + ResidentLimit() / 2) {
    s = Checkpoint(w);
    if (!s.ok()) Log("shard %u: checkpoint failed (will retry): %s", w->id, s.ToString().c_str());
  }
  if (w->cp_phase.load(std::memory_order_acquire) != kCheckpointIdle) return;
  const bool due_by_time = Clock::now() - w->last_checkpoint >=
                           std::chrono::milliseconds(options.checkpoint_interval_ms);
  const bool has_work = w->state.dirty_count() > 0 || w->log_seq != w->checkpoint_seq;
  const bool over_memory = w->state.resident_users() > ResidentLimit() + ResidentLimit() / 8;
  // The log after the last checkpoint is what a restart replays: it is kept
  // short.
  if (force_checkpoint) {
    s = Checkpoint(w);
    if (!s.ok()) {
      Log("shard %u: final checkpoint failed: %s", w->id, s.ToString().c_str());
      std::lock_guard<std::mutex> lock(error_mu);
      if (first_worker_error.ok()) first_worker_error = s;
    }
  } else if (store_failing || w->spill_phase.load(std::memory_order_acquire) != kSpillIdle) {
    // A checkpoint waits for the store to recover (it would fail), and for
    // the spill in flight: the ids frozen for it are
    // in no seen blob and no committed run, so a checkpoint (and the log trim
    // after it) now would leave them nowhere after a crash.
  } else if (over_memory || w->state.dirty_count() >= options.checkpoint_dirty_users ||
             w->logged_since_checkpoint >= options.checkpoint_log_events ||
             (options.write_log && due_by_time && has_work)) {
    StartCheckpoint(w);
  }
}

void Pipeline::Impl::Run(Worker* w) {
  std::vector<Task> tasks(kMaxGroupBatches);
  std::vector<Batch*> group;
  group.reserve(kMaxGroupBatches);
  for (;;) {
    if (pause_requested.load(std::memory_order_acquire)) Park(w);
    // While a snapshot is being taken, an idle worker goes straight on with it.
    const bool snapshotting =
        w->cp_phase.load(std::memory_order_relaxed) == kCheckpointSnapshotting;
    size_t n = w->queue.wait_dequeue_bulk_timed(tasks.data(), tasks.size(),
                                                std::chrono::milliseconds(snapshotting ? 0 : 5));
    AnswerQueries(w);
    group.clear();
    size_t group_events = 0;
    bool stop = false;
    for (size_t i = 0; i < n; ++i) {
      Batch* b = tasks[i].batch;
      if (b == nullptr) {
        stop = stopping.load();
        continue;
      }
      group.push_back(b);
      group_events += b->per_shard[w->id].size();
      if (group_events >= kMaxGroupEvents) {
        ProcessGroup(w, group.data(), group.size());
        group.clear();
        group_events = 0;
        AnswerQueries(w);
      }
    }
    if (!group.empty()) ProcessGroup(w, group.data(), group.size());
    AnswerQueries(w);
    if (stop && w->queue.size_approx() == 0) {
      Housekeep(w, true /*force_checkpoint*/);
      AnswerQueries(w);
      return;
    }
    Housekeep(w, false);
  }
}

void Pipeline::Impl::ApplyLogged(Worker* w, const Event& e) {
  // Every logged event was accepted when it was logged, after the
  // checkpoint: it is applied whatever the loaded ids say (an id that had
  // expired in memory may still sit in a seen blob the next checkpoint would
  // have deleted). MarkSeen only records it again.
  const bool credit = e.type == EventType::kReferralCredit;
  (void)w->state.MarkSeen(e.event_id, credit ? kCreditSeed : kEventSeed, e.ts_ms, Today());
  AtomicMax(&watermark, e.ts_ms);
  w->state.Apply(e, Today());
  ++recovery.log_events_replayed;
}

Status Pipeline::Impl::Recover() {
  const auto start = Clock::now();
  for (auto& w : workers) w->state.SetWallClock(WallNow());
  // Shard metas: aggregates and the log position each checkpoint covers.
  // The user index is rebuilt for a shard whose stamp does not match.
  std::vector<bool> build_index(workers.size(), false);
  for (auto& w : workers) {
    std::string meta;
    bool found = false;
    Status s = store->GetMeta(ShardMetaKey(w->id), &meta, &found);
    if (!s.ok()) return s;
    if (!found) continue;
    std::string stamp;
    bool stamped = false;
    s = store->GetMeta(UserIndexStampKey(w->id), &stamp, &stamped);
    if (!s.ok()) return s;
    build_index[w->id] = !stamped || stamp != UserIndexStamp(meta);
    uint64_t seq;
    s = w->state.DecodeMeta(meta, &seq);
    if (!s.ok()) return s;
    w->log_seq = w->checkpoint_seq = seq;
    if (w->state.max_ts() != kNoTs) AtomicMax(&watermark, w->state.max_ts());
    w->seen_sub =
        static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  // Users: as many as fit stay resident; the others only register their
  // pending tier checks (by hash) and are reloaded when needed.
  const size_t limit = ResidentLimit();
  for (auto& w : workers) {
    Status st;
    size_t loaded = 0;
    uint64_t indexed = 0;
    std::unique_ptr<state::Store::Checkpoint> index;
    auto flush_index = [&] {
      Status c = index ? store->Commit(index.get(), false /*sync: the stamp's is*/) : Status::Ok();
      index.reset();
      return c;
    };
    Status s = store->ScanUsers(w->id, "", [&](std::string_view id, std::string_view bytes) {
      st = w->state.LoadUser(id, bytes, loaded < limit);
      ++loaded;
      ++recovery.users_loaded;
      if (st.ok() && build_index[w->id]) {
        if (!index) index = std::make_unique<state::Store::Checkpoint>(store.get(), 1u << 20);
        index->PutUserIndex(w->id, w->state.HashOf(id), id);
        ++indexed;
        if (index->ApproximateBytes() >= (16u << 20)) st = flush_index();
      }
      return st.ok();
    });
    if (!s.ok()) return s;
    if (!st.ok()) return st;
    if (build_index[w->id]) {
      s = flush_index();
      if (!s.ok()) return s;
      std::string meta;
      bool found = false;
      s = store->GetMeta(ShardMetaKey(w->id), &meta, &found);
      if (s.ok()) s = store->PutMeta(UserIndexStampKey(w->id), UserIndexStamp(meta), true /*sync*/);
      if (!s.ok()) return s;
      Log("shard %u: indexed %llu users by hash (a data dir from before the user index)", w->id,
          static_cast<unsigned long long>(indexed));
    }
    s = store->ScanSeen(w->id, [&](int32_t day, std::string_view packed) {
      return w->state.LoadSeen(day, packed);
    });
    if (!s.ok()) return s;
    s = store->ScanIdRuns(w->id, [&](std::string_view d) { return w->state.LoadIdRun(d); });
    if (!s.ok()) return s;
    // Blocks of a spill whose descriptor never committed (a crash came first).
    s = store->DeleteIdBlocksFrom(w->id, w->state.next_run_no());
    if (!s.ok()) return s;
    w->state.RebuildTimers();
  }
  // The log after each checkpoint: acknowledged events not yet in state.
  // A first pass finds T, so that replayed events get (at least) the arrival
  // day they had in the duplicate index.
  for (auto& w : workers) {
    Status s = store->ScanLog(w->id, w->checkpoint_seq, [&](uint64_t, std::string_view block) {
      ingest::LogBlockReader reader(block);
      Event e;
      while (reader.Next(&e)) AtomicMax(&watermark, e.ts_ms);
      return Status::Ok();
    });
    if (!s.ok()) return s;
  }
  for (auto& w : workers) {
    Status s = store->ScanLog(w->id, w->checkpoint_seq, [&](uint64_t seq, std::string_view block) {
      ingest::LogBlockReader reader(block);
      const ingest::LogBlockCounts& c = reader.counts();
      w->state.CountIngest(c.duplicates, c.rejected, c.beyond_horizon);
      Event e;
      while (reader.Next(&e)) ApplyLogged(w.get(), e);
      Status id_status = w->state.TakeIdError();
      if (!id_status.ok()) return id_status;
      if (!reader.ok()) {
        return Status::Corruption("log block " + std::to_string(seq) + " of shard " +
                                  std::to_string(w->id) + " does not decode");
      }
      w->log_seq = seq;
      return Status::Ok();
    });
    if (!s.ok()) return s;
  }
  if (rules_changed) {
    Status s = Retier();
    if (!s.ok()) return s;
  }
  const int32_t today = Today();
  for (auto& w : workers) {
    if (today != kNoDay) w->state.Sweep(today, SIZE_MAX);
    if (recovery.log_events_replayed > 0 || w->log_seq != w->checkpoint_seq) {
      Status s = Checkpoint(w.get());
      if (!s.ok()) return s;
    }
  }
#if defined(__GLIBC__)
  // Recovery's transient memory (RocksDB's replay of its WAL into memtables,
  // the scans' buffers) is freed by now, but glibc keeps freed heap pages
  // resident: give them back, so that what stays resident is the state.
  ::malloc_trim(0);
#endif
  recovery.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return Status::Ok();
}

// The tier rules changed since the data was written: every user's tier (and
// the tier histogram) is re-evaluated under the new rules, resident users in
// memory, the others straight in the store.
Status Pipeline::Impl::Retier() {
  uint64_t changed = 0;
  for (auto& w : workers) {
    changed += w->state.RetierResident();
    state::Store::Checkpoint cp(store.get());
    std::string updated;
    Status s = store->ScanUsers(w->id, "", [&](std::string_view id, std::string_view bytes) {
      if (w->state.RetierEvicted(id, bytes, &updated)) {
        cp.PutUser(w->id, id, updated);
        ++changed;
      }
      return true;
    });
    if (!s.ok()) return s;
    std::string meta;
    w->state.EncodeMeta(w->checkpoint_seq, &meta);
    cp.PutMeta(ShardMetaKey(w->id), meta);
    cp.PutMeta(UserIndexStampKey(w->id), UserIndexStamp(meta));
    s = store->Commit(&cp, true /*sync*/);
    if (!s.ok()) return s;
  }
  Log("tier rules changed: re-evaluated every user, %llu changed tier",
      static_cast<unsigned long long>(changed));
  return Status::Ok();
}

// ---- Pipeline ---------------------------------------------------------------

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Pipeline::~Pipeline() {
  if (!impl_->closed) (void)Close();
}

Result<std::unique_ptr<Pipeline>> Pipeline::Open(const PipelineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec)
    return Status::IoError("cannot create data dir " + options.data_dir + ": " + ec.message());
  auto store = state::Store::Open(options.data_dir + "/db", state::StoreOptions{});
  if (!store.ok()) return store.status();
  impl->store = std::move(store).value();
  impl->store_raw = impl->store.get();

  // The shard count is part of the data: users are placed by hash modulo it.
  std::string stored;
  bool found = false;
  Status s = impl->store->GetMeta("shards", &stored, &found);
  if (!s.ok()) return s;
  uint32_t shards = options.shards;
  if (shards > 256) return Status::InvalidArgument("--shards must be in 1..256");
  if (found) {
    uint32_t have = 0;
    auto r = std::from_chars(stored.data(), stored.data() + stored.size(), have);
    if (r.ec != std::errc() || have == 0 || have > 256) {
      return Status::Corruption("data dir " + options.data_dir + ": bad shard count");
    }
    if (shards != 0 && shards != have) {
      return Status::FailedPrecondition("data dir " + options.data_dir + " holds " +
                                        std::to_string(have) + " shards; start with --shards " +
                                        std::to_string(have) + " or use a new data dir");
    }
    shards = have;
  } else {
    if (shards == 0) shards = std::clamp(std::thread::hardware_concurrency(), 1u, 256u);
    s = impl->store->PutMeta("shards", std::to_string(shards), true /*sync*/);
    if (!s.ok()) return s;
  }
  // So is the time zone: every per-day histogram is cut by it.
  const std::string tz = FormatUtcOffset(options.config.utc_offset_ms);
  s = impl->store->GetMeta("tz", &stored, &found);
  if (!s.ok()) return s;
  if (found && stored != tz) {
    return Status::FailedPrecondition("data dir " + options.data_dir + " counts days in " + stored +
                                      "; start with --tz " + stored + " or use a new data dir");
  }
  if (!found) {
    s = impl->store->PutMeta("tz", tz, true /*sync*/);
    if (!s.ok()) return s;
  }
  // Tier rules may change: users are then re-evaluated during recovery.
  s = impl->store->GetMeta("rules", &stored, &found);
  if (!s.ok()) return s;
  const std::string rules = RulesKey(options.config.rules);
  impl->rules_changed = found && stored != rules;
  impl->options.shards = shards;
  impl->reject_log =
      std::make_unique<ingest::RejectLog>(options.data_dir + "/rejected.ndjson", 64ull << 20);
  for (uint32_t i = 0; i < shards; ++i) {
    impl->workers.push_back(std::make_unique<Impl::Worker>(i, options.config, &impl->store_raw));
    impl->workers.back()->state.set_memory_id_limit(
        std::max<size_t>(1024, options.dedup_memory_bytes / kBytesPerMemoryId / shards));
    impl->workers.back()->state.set_warm_memory(options.warm_memory_bytes / shards);
  }
  Impl* committer_impl = impl.get();
  impl->committer = std::thread([committer_impl] { committer_impl->RunCommitter(); });
  s = impl->Recover();
  if (!s.ok()) return s;
  s = impl->store->PutMeta("rules", rules, true /*sync*/);
  if (!s.ok()) return s;
  // The recovery figures are the caller's to log (recovery()): a server
  // reports them, an offline replay has none worth a line.
  Impl* raw = impl.get();
  for (auto& w : impl->workers) {
    Impl::Worker* wp = w.get();
    w->thread = std::thread([raw, wp] { raw->Run(wp); });
  }
  impl->workers_running.store(true);
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

uint32_t Pipeline::shards() const { return impl_->options.shards; }
const state::Config& Pipeline::config() const { return impl_->options.config; }
ingest::RejectLog* Pipeline::reject_log() { return impl_->reject_log.get(); }
const RecoveryStats& Pipeline::recovery() const { return impl_->recovery; }
int64_t Pipeline::watermark() const { return impl_->watermark.load(); }

bool Pipeline::DiskLow() const { return impl_->DiskLow(); }

int64_t Pipeline::WallClockMs() const { return impl_->WallNow(); }

std::unique_ptr<Batch> Pipeline::NewBatch() const {
  auto batch = std::make_unique<Batch>(shards());
  const int64_t ahead = impl_->options.config.max_future_ms;
  if (ahead > 0) batch->ts_limit = ingest::TsLimit{impl_->WallNow() + ahead, ahead};
  return batch;
}

std::vector<std::string> Pipeline::IngestRefusals() const {
  std::vector<std::string> reasons;
  if (impl_->DiskLow()) reasons.emplace_back("disk space is below the watermark");
  if (impl_->store->failing()) {
    reasons.emplace_back("a durable write failed (" + impl_->store->failure() +
                         "); ingest resumes once the store recovers");
  }
  return reasons;
}

void Pipeline::Submit(std::unique_ptr<Batch> batch, std::function<void(BatchOutcome)> done) {
  Batch* b = batch.release();
  b->done_ = std::move(done);
  uint32_t parts = 0;
  uint64_t weight = 0;
  for (const auto& v : b->per_shard) {
    parts += v.empty() ? 0 : 1;
    weight += v.size();
  }
  if (weight > 0 && (impl_->DiskLow() || impl_->store->failing())) {
    // Nothing of it is taken (rejections included): the sender re-sends later.
    b->failed_.store(true);
    b->rejected = 0;
    b->errors.clear();
    b->pending_.store(1);
    impl_->CompletePart(b);
    return;
  }
  b->weight_ = weight;
  impl_->inflight.fetch_add(static_cast<int64_t>(weight), std::memory_order_acq_rel);
  // Decide the targets first: once enqueued, a part may complete and the
  // last one deletes the batch, so `b` must not be read after that.
  uint32_t targets[256];
  uint32_t ntargets = 0;
  for (uint32_t i = 0; i < b->per_shard.size(); ++i) {
    if (!b->per_shard[i].empty()) targets[ntargets++] = i;
  }
  // Rejected lines are counted, durably, by one shard: the first with a
  // part, or shard 0 for a batch of rejections only.
  if (ntargets == 0 && b->rejected > 0) targets[ntargets++] = 0;
  b->reject_shard_ = ntargets > 0 ? targets[0] : 0;
  parts = ntargets;
  if (parts == 0) {
    b->pending_.store(1);
    impl_->CompletePart(b);
    return;
  }
  b->pending_.store(parts, std::memory_order_release);
  for (uint32_t k = 0; k < ntargets; ++k) impl_->workers[targets[k]]->queue.enqueue(Task{b});
}

bool Pipeline::HasCapacity() const {
  return impl_->inflight.load(std::memory_order_acquire) <
         static_cast<int64_t>(impl_->options.max_inflight_events);
}

void Pipeline::WaitForCapacity() const {
  while (!HasCapacity()) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

void Pipeline::GetUser(std::string user_id,
                       std::function<void(std::optional<ProfileReport>)> done) {
  auto* q = new Query{};
  q->kind = Query::Kind::kUser;
  q->user_done = std::move(done);
  auto& w = *impl_->workers[ShardOf(user_id, shards())];
  q->user_id = std::move(user_id);
  w.queries.enqueue(q);
  w.queue.enqueue(Task{nullptr});
}

void Pipeline::GetKpis(std::function<void(KpiReport)> done) {
  auto g = std::make_shared<Query::Gather>();
  g->kpis_done = std::move(done);
  impl_->Broadcast(Query::Kind::kKpis, g);
}

void Pipeline::ListTierPage(state::Tier tier, std::string after, size_t limit, bool with_profiles,
                            std::function<void(TierPage)> done) {
  auto g = std::make_shared<Query::Gather>();
  g->tier = tier;
  g->limit = std::max<size_t>(limit, 1);
  g->with_profiles = with_profiles;
  g->page_done = std::move(done);
  impl_->Broadcast(Query::Kind::kListTier, g, after);
}

void Pipeline::GetStats(std::function<void(PipelineStats)> done) {
  auto g = std::make_shared<Query::Gather>();
  g->stats_done = std::move(done);
  impl_->Broadcast(Query::Kind::kStats, g);
}

Status Pipeline::Close() {
  if (impl_->closed) return Status::Ok();
  impl_->closed = true;
  impl_->stopping.store(true);
  for (auto& w : impl_->workers) w->queue.enqueue(Task{nullptr});
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  impl_->StopCommitter();
  Status s;
  {
    std::lock_guard<std::mutex> lock(impl_->error_mu);
    s = impl_->first_worker_error;
  }
  impl_->store.reset();
  return s;
}

}  // namespace tierstream::pipeline
