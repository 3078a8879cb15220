// Pipeline: routes decoded events by user to N shard workers, each of which
// alone owns its users' state (no locks on the hot path), makes accepted
// events durable before they are acknowledged, applies them, keeps tiers
// current as event time advances, and checkpoints state to the Store.
//
// Flow of a Batch: a listener decodes bytes into a Batch whose events are
// already split per shard (BatchBuilder), then Submit()s it. Each worker
// takes the batches from its queue in groups: it drops duplicates, appends the
// group's accepted events to its log in one RocksDB write (the write-ahead of
// state), applies them in memory, and completes its part. When the last part
// completes, the batch's callback runs: the answer is sent only then.
// Periodically each worker writes its dirty users, aggregates, new event ids
// and its log position in one atomic WriteBatch and drops the log it covers;
// Open() reloads that checkpoint and replays the log after it.
//
// Ingest positions: a worker's log sequence number is the position of its
// partition of the journal, read back as a Source (source.h,
// journal_source.h); a distributed-log source maps it to a consumer offset.
// Queries answer typed values (queries.h); the server renders them as JSON.
// How the work is divided among files: pipeline_impl.h.
//
// Thread safety: thread-safe. Callbacks run on worker threads and must not block.
#ifndef TIERSTREAM_PIPELINE_PIPELINE_H_
#define TIERSTREAM_PIPELINE_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash.h"
#include "common/status.h"
#include "ingest/reject_log.h"
#include "pipeline/batch.h"
#include "pipeline/queries.h"
#include "state/config.h"
#include "state/input_position.h"
#include "state/store.h"
#include "state/user_state.h"

namespace tierstream::pipeline {

// The Kafka mode's changelog (kafka/changelog.h): where a shard's state
// stands — the owner generation and number of a checkpoint, and the input
// position it covers.
struct ShardMark {
  uint64_t generation = 0;
  uint64_t checkpoint = 0;
  state::InputPosition position;
  friend bool operator==(const ShardMark&, const ShardMark&) = default;
};

// What a committed checkpoint of a shard wrote, as shard-image chunks
// (state::Store::ExportImage), for the changelog. `complete` is false for the
// blocks of an id spill, which the shard's next checkpoint completes.
// `changes`: the tier changes the shard made since its previous checkpoint
// (encoded state::TierChange, in order), which this one covers.
struct CheckpointImage {
  uint32_t shard = 0;
  bool complete = true;
  ShardMark mark;
  std::vector<std::string> chunks;
  std::vector<std::string> changes;
};

struct PipelineOptions {
  std::string data_dir = "./data";
  uint32_t shards = 0;  // 0: the data dir's count, or the number of cores for a new one
  // How users are placed on shards (common/hash.h): kHash64 for the journal
  // behind the listeners; kKafka (shards = the input topic's partitions)
  // for the Kafka mode. A data dir keeps the placement it was created with.
  Placement placement = Placement::kHash64;
  state::Config config;
  // true (serve): every accepted event is written to the log before it is
  // acknowledged. false (replay): state is only checkpointed; the caller
  // reports success after Close().
  bool write_log = true;
  bool fsync = false;                     // fsync the log (survives power loss, not only kill -9)
  size_t max_inflight_events = 1u << 20;  // backpressure bound across all shards
  // A shard checkpoints (in the background: its worker only snapshots what
  // changed) every checkpoint_interval_ms while it has changes, and sooner
  // once checkpoint_log_events events were logged since the last one — the
  // most a restart replays — or checkpoint_dirty_users users changed.
  size_t checkpoint_dirty_users = 1'000'000;
  int checkpoint_interval_ms = 2000;
  size_t checkpoint_log_events = 1'000'000;
  size_t sweep_slice = 4096;  // users re-evaluated per slice between batches
  // Users encoded per slice of a checkpoint's snapshot between batches (a
  // user about to change is encoded first, so the snapshot stays exact).
  size_t snapshot_slice = 4096;
  size_t expire_slice = 16384;  // expired event ids freed per slice between batches
  // Users kept in memory, across all shards; beyond it, clean users are
  // evicted after a checkpoint and reloaded from RocksDB on their next event.
  size_t max_resident_users = 4'000'000;
  // Memory for event ids kept exactly in memory (about 80 bytes each),
  // across all shards; beyond it a checkpoint spills them into sorted runs
  // on disk, which keep ~1.6 bytes per id in memory.
  size_t dedup_memory_bytes = 256u << 20;
  // Memory for evicted users kept encoded (~100-200 bytes each instead of
  // ~1 KB decoded), across all shards: reloading one costs a decode instead
  // of a RocksDB read. Beyond it the oldest are dropped (they are on disk).
  size_t warm_memory_bytes = 512u << 20;
  // Ingest is refused (503, TCP: an error summary) while the data dir's file
  // system has less free space than this: RocksDB must never meet a full disk.
  uint64_t min_free_bytes = 256ull << 20;
  bool log_to_stderr = true;
  // How often the change feed's retention is applied (config.changes).
  int retention_interval_ms = 10'000;
  // The wall clock, in ms since the epoch (empty: the system clock). Tests
  // inject theirs: it decides the future guard and the duplicate horizon.
  std::function<int64_t()> wall_clock;
  // Called once when a part of the pipeline failed — an exception escaped a
  // shard worker or the committer (the Status names the part and what it
  // said) — on the failing thread, so it must not block (serve stops the
  // server from it). The pipeline goes on answering meanwhile: ingest is
  // refused (IngestRefusals says why), queries the failed part would have
  // answered carry the failure, and Close() returns it; a restart recovers
  // every acknowledged event.
  std::function<void(const Status& failure)> on_failure;
  // The Kafka mode's changelog: called on the committer thread, in order,
  // after each checkpoint of a shard (or spill of its ids) was committed,
  // with what it wrote. It may block (backpressure on checkpoints).
  std::function<void(CheckpointImage image)> on_checkpoint;
  // For tests only (as RocksDB's TEST_SYNC_POINT): called on the pipeline's
  // threads at named points, so that a test can throw there: "worker.group"
  // (a shard worker, before it processes a group of batches),
  // "committer.checkpoint" and "committer.spill" (the committer, before it
  // handles a job of `shard`). Empty in production.
  std::function<void(std::string_view where, uint32_t shard)> test_fault_hook;
};

struct RecoveryStats {
  uint64_t users_loaded = 0;
  uint64_t log_events_replayed = 0;
  double seconds = 0;
};

class Pipeline {
 public:
  static Result<std::unique_ptr<Pipeline>> Open(const PipelineOptions& options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  uint32_t shards() const;
  const state::Config& config() const;
  ingest::RejectLog* reject_log();
  // What Open() recovered: users loaded, log replayed, time taken (Open
  // does not log it; a server does).
  const RecoveryStats& recovery() const;

  // A batch for Submit, with the future guard as of now.
  std::unique_ptr<Batch> NewBatch() const;
  // The wall clock of PipelineOptions, in ms since the epoch.
  int64_t WallClockMs() const;
  // Hands `batch` to the shards; `done` runs once, on a worker thread, after
  // every accepted event of it is durable and applied. Batches submitted from
  // one thread are processed by each shard in submission order.
  void Submit(std::unique_ptr<Batch> batch, std::function<void(BatchOutcome)> done);
  // True while free disk space is under the watermark (ingest is refused).
  bool DiskLow() const;
  // Why ingest is being refused right now, one short reason each ("disk space
  // is below the watermark", "a durable write failed (journal: IO error:
  // ...); ingest resumes once the store recovers"); empty when it is not.
  // A failed write refuses ingest until the store has recovered, which the
  // pipeline does by itself (DB::Resume(), or reopening the database with
  // the workers paused between groups), retrying with backoff. A failed
  // part of the pipeline (on_failure) refuses it until a restart ("a
  // pipeline part failed: shard 1 worker failed: ...; restart the server").
  // Thread-safe and cheap: for /healthz and /readyz.
  std::vector<std::string> IngestRefusals() const;
  // False while the events in flight exceed the bound: producers should wait.
  bool HasCapacity() const;
  // Blocks until HasCapacity() (for offline producers such as replay).
  void WaitForCapacity() const;

  // Queries (typed answers: pipeline/queries.h; Await blocks on one),
  // answered on a worker thread after every batch that completed before the
  // call. `done` runs once, on a worker thread, and must not block. After a
  // part of the pipeline failed (on_failure), every query is still
  // answered: those a failed shard had to answer carry the failure in
  // their status (the stats leave its figures out).
  //
  // The profile of `user_id`; nullopt if she is unknown (or no event has
  // been accepted yet).
  void GetUser(std::string user_id, std::function<void(std::optional<ProfileReport>)> done);
  // Her tier explained as of T (GET /v1/users/{id}/explain); nullopt as
  // GetUser.
  void ExplainUser(std::string user_id, std::function<void(std::optional<ExplainReport>)> done);
  // The KPIs, with every tier exact as of T.
  void GetKpis(std::function<void(KpiReport)> done);
  // The members of `tier` after the id `after` ("": from the first), at
  // most `limit` of them, with each member's profile when `with_profiles`.
  // Each page checkpoints the shards that have changes (the listing reads
  // the store), so page through a large tier rather than asking for all of
  // it at once.
  void ListTierPage(state::Tier tier, std::string after, size_t limit, bool with_profiles,
                    std::function<void(TierPage page)> done);
  // The operational figures of /healthz.
  void GetStats(std::function<void(PipelineStats)> done);

  // ---- the change feed (docs: README "Tier changes")
  // Whether tier changes are recorded (config.changes.enabled). With
  // write_log the changes time makes are journaled, so that a restart makes
  // the same ones again; an offline replay records its changes too (it is
  // not resumed after a crash, but run again on a fresh data dir).
  bool change_log() const;
  // Up to `limit` changes matching `filter` after cursor `after`, as far as
  // they are durable; kChangesFromOldest: from the oldest retained. Reads
  // the store on the calling thread (a bounded scan).
  static constexpr uint64_t kChangesFromOldest = UINT64_MAX;
  ChangePage ReadChanges(uint64_t after, size_t limit, const ChangeFilter& filter);
  // The cursor of the newest durable change ("after=end" resumes there).
  uint64_t ChangesEnd() const;
  // Calls fn() once (on a worker thread; it must not block) as soon as a
  // change after `after` is durable, at once if one is. Returns a token for
  // CancelChangesWait, 0 if fn ran already.
  uint64_t OnChangesAfter(uint64_t after, std::function<void()> fn);
  // False if the callback ran or is running.
  bool CancelChangesWait(uint64_t token);
  // Changes in the feed (bytes, approximate), as the committer last
  // sampled them (at most about a second before); 0 when the log is off.
  // Also in GetStats (PipelineStats::changes_bytes).
  uint64_t ChangesBytes() const;
  // What a consumer of the feed that the server runs itself (a webhook)
  // keeps of its position: a small value under `name`, in the state
  // database (written without fsync unless --fsync: it survives kill -9).
  // Unavailable while the store is failing (it is reopened meanwhile).
  Status GetConsumerState(std::string_view name, std::string* value, bool* found);
  Status PutConsumerState(std::string_view name, std::string_view value);

  // The Kafka mode: where `shard` stands in its input (state/input_position.h)
  // as of its last durable group: the next offsets to read. Thread-safe.
  // REQUIRES: shard < shards().
  state::InputPosition InputPositionOf(uint32_t shard) const;
  // Its forward marks by source partition (state/input_position.h): the
  // next source offset not yet taken (absent: 0). Thread-safe.
  std::vector<uint64_t> ForwardMarksOf(uint32_t shard) const;

  // The Kafka mode: takes `shard` over for owner `generation`. On the
  // shard's worker, once no checkpoint or spill is in flight, `rebuild` is
  // given the mark of the shard's last committed checkpoint; if it rebuilt
  // the shard in the store (wiped, then applied images: it returns true),
  // the shard is reloaded from the store. Then the shard checkpoints under
  // `generation`, and `publish_base` receives the whole shard as image chunks, with
  // its mark. Blocks until done; no batch of the shard may be in
  // flight meanwhile. `publish_base` gets them on the worker, before the
  // shard can take another checkpoint (on_checkpoint then follows it).
  using RebuildFn = std::function<Result<bool>(const ShardMark& local, state::Store* store)>;
  using BaseFn = std::function<Status(std::vector<std::string> base, const ShardMark& mark)>;
  Status ClaimShard(uint32_t shard, uint64_t generation, const RebuildFn& rebuild,
                    const BaseFn& publish_base);
  // Checkpoints `shard` now, on its worker (after the batches submitted
  // before), and returns once it is committed: a partition handed over
  // leaves its newest state to the changelog. Blocks.
  Status CheckpointShard(uint32_t shard);
  // Whether this instance answers for `user_id`: always in the journal
  // mode; in the Kafka mode, if it owns her partition (else *partition is
  // it). Thread-safe.
  bool AnswersFor(std::string_view user_id, uint32_t* partition) const;
  // The Kafka mode: this instance no longer owns `shard`'s partition; it
  // takes no checkpoint until claimed again (every shard starts so).
  void ReleaseShard(uint32_t shard);
  // The meta keys of a shard in the store, for shard images.
  static std::vector<std::string> ShardMetaKeys(uint32_t shard);

  // T: the largest accepted ts, or kNoTs.
  int64_t watermark() const;
  // The Kafka mode: T of the cluster, as other instances report theirs;
  // this instance's T becomes at least `t` (as if it had accepted an event
  // of that ts). Thread-safe.
  void ObserveWatermark(int64_t t);

  // Drains the queues, checkpoints every shard and closes the store. Not ok
  // if a final checkpoint failed, or a part of the pipeline failed (the
  // first such failure; its shard is then not checkpointed: a restart
  // replays its log).
  Status Close();

 private:
  struct Impl;
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_PIPELINE_H_
