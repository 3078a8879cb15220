// KafkaIngest (see kafka_ingest.h): one thread polls the group's consumer of
// the input topic and a consumer of the repartition topic (assigned the same
// partitions by hand: the group's assignor would place a partition of each
// topic independently), gathers each partition's records, forwards what
// belongs to other partitions, and submits one batch per partition.
#include "kafka/kafka_ingest.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>
#include <utility>

#include "common/hash.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_name.h"
#include "ingest/decoder.h"
#include "kafka/change_publisher.h"
#include "kafka/changelog.h"
#include "kafka/client.h"
#include "kafka/forward.h"
#include "state/log_format.h"

namespace tierstream::kafka {

using ingest::Event;
using ingest::EventType;
using state::InputPosition;
using Clock = std::chrono::steady_clock;

struct KafkaIngest::Impl {
  // One partition of the input (and of the repartition topic), as this
  // member reads it. The consuming thread's, but for the atomics.
  struct Partition {
    bool assigned = false;
    InputPosition next;   // after the last record read
    InputPosition start;  // where the pending records begin
    ingest::PaddedBuffer text;
    std::vector<std::pair<uint64_t, int64_t>> line_offsets;  // first line, offset
    uint64_t lines = 0;
    std::vector<std::string> blocks;  // forwarded log blocks
    size_t records = 0;
    size_t bytes = 0;
    // The shard's forward marks, by source partition, as submitted.
    std::vector<uint64_t> marks;
    std::atomic<int> inflight{0};
    std::atomic<bool> failed{false};
    bool rewinding = false;
    std::atomic<int64_t> failed_at_ns{0};  // when `failed` was set (steady clock)
  };

  KafkaOptions options;
  pipeline::Pipeline* pipeline = nullptr;
  std::function<void(const Status&)> on_fatal;
  uint32_t n = 0;
  std::string repartition_topic;
  rd_kafka_t* consumer = nullptr;     // the group's member, of the input topic
  rd_kafka_t* repartition = nullptr;  // assigned by hand
  rd_kafka_t* producer = nullptr;     // forwards
  // The changelog: its producer (never gives up on a record), and a reader
  // for takeovers.
  std::string changelog_topic;
  std::string instance_name;
  rd_kafka_t* changelog_producer = nullptr;
  rd_kafka_t* changelog_reader = nullptr;
  // Whose images the changelog takes, per partition: those of the owner
  // generation this member claimed, once it wrote its base.
  struct ClaimState {
    uint64_t generation = 0;
    bool based = false;
    // The changes of the claim's own checkpoint, which go with its base.
    std::vector<std::string> base_changes;
  };
  // Publishes the changes of checkpoints to PREFIX-changes.
  std::unique_ptr<ChangePublisher> publisher;
  rd_kafka_t* fence_reader = nullptr;  // the publisher's reader of the changelog
  // This member's records of each changelog partition since its latest
  // claim there, as acknowledged: where the next one should land and the
  // offset ranges between them that others wrote (kafka/change_publisher.h).
  struct Chain {
    int64_t claim = -1;
    int64_t next = -1;
    std::vector<std::pair<int64_t, int64_t>> gaps;
  };
  mutable Mutex chains_mu;
  std::vector<Chain> chains ABSL_GUARDED_BY(chains_mu);
  mutable Mutex claims_mu;
  std::vector<ClaimState> claims ABSL_GUARDED_BY(claims_mu);
  std::atomic<uint64_t> restores{0}, restored_bytes{0}, restore_micros{0}, changelog_failures{0};
  std::vector<std::unique_ptr<Partition>> partitions;
  ingest::Decoder decoder;
  std::unique_ptr<Router> router;
  std::vector<uint64_t> forward_offsets;  // scratch
  std::thread thread;
  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::atomic<uint64_t> delivery_failures{0};

  mutable Mutex stats_mu;
  std::vector<uint32_t> assigned ABSL_GUARDED_BY(stats_mu);
  uint64_t rebalances ABSL_GUARDED_BY(stats_mu) = 0;
  std::atomic<uint64_t> records{0}, forwarded_records{0}, forwarded_events{0}, batches{0},
      rewinds{0};

  ~Impl() {
    publisher.reset();
    if (fence_reader != nullptr) rd_kafka_destroy(fence_reader);
    if (changelog_reader != nullptr) rd_kafka_destroy(changelog_reader);
    if (changelog_producer != nullptr) {
      CloseProducer(changelog_producer, 10'000);
    }
    // Closed (it left the group) by Stop(), the group's member is not
    // destroyed: librdkafka 2.0.2 aborts destroying a cooperative-sticky
    // member whose assignor state is unset (after some rebalances), an
    // assertion fixed in 2.3.0 (confluentinc/librdkafka#4312). Its memory
    // and threads go with the process, which is ending.
    if (consumer != nullptr && !stopped) rd_kafka_destroy(consumer);
    if (repartition != nullptr) rd_kafka_destroy(repartition);
    CloseProducer(producer, 0);  // forwards: each batch waited for its own
  }

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque) {
    static_cast<Impl*>(opaque)->Rebalance(rk, err, parts);
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    auto* self = static_cast<Impl*>(opaque);
    self->delivery_failures.fetch_add(1);
    Log(LogLevel::kError, "tierstream: kafka: forwarding to %s[%d] failed: %s",
        rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
  }

  void Rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    PartitionList repart;
    std::string names;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      for (int i = 0; i < parts->cnt; ++i) {
        const auto p = static_cast<uint32_t>(parts->elems[i].partition);
        if (p >= n) continue;  // the topic grew: not ours to serve
        Partition& part = *partitions[p];
        if (Status taken = TakeOver(p); !taken.ok()) {
          Log(LogLevel::kError, "tierstream: kafka: taking partition %u over failed: %s", p,
              taken.ToString().c_str());
          if (on_fatal) on_fatal(taken);
          stopping.store(true);
        }
        // Where the shard's state stands, not where the group's commits say.
        const InputPosition at = pipeline->InputPositionOf(p);
        part.assigned = true;
        part.next = part.start = at;
        part.marks = pipeline->ForwardMarksOf(p);
        part.marks.resize(n, 0);
        Clear(&part);
        parts->elems[i].offset = static_cast<int64_t>(at.events);
        repart.Add(repartition_topic, p, static_cast<int64_t>(at.repartition));
        names += (names.empty() ? "" : ",") + std::to_string(p);
      }
      Log(LogLevel::kInfo, "tierstream: kafka: assigned %s partitions [%s]", options.topic.c_str(),
          names.c_str());
      LogError(rd_kafka_incremental_assign(repartition, repart.list), "assigning repartition");
      if (cooperative) {
        LogError(rd_kafka_incremental_assign(rk, parts), "assign");
      } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts)) {
        Log(LogLevel::kError, "tierstream: kafka: assign: %s", rd_kafka_err2str(e));
      }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      // For lag tools, the group's committed offsets: the shards' positions
      // as they hand their partitions over. Only then, and synchronously:
      // librdkafka takes a commit refused for an older generation (one
      // that lands during a rebalance) as its assignment lost, and
      // rejoining then starts another rebalance.
      PartitionList committed;
      for (int i = 0; i < parts->cnt; ++i) {
        const auto p = static_cast<uint32_t>(parts->elems[i].partition);
        if (p >= n) continue;
        Partition& part = *partitions[p];
        // What was read but not submitted is the next owner's to read; what
        // was submitted is waited for, so that the shard's state is whole.
        part.assigned = false;
        Clear(&part);
        while (part.inflight.load(std::memory_order_acquire) > 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        // Its newest state goes to the changelog for the next owner.
        if (Status c = pipeline->CheckpointShard(p); !c.ok()) {
          Log(LogLevel::kWarning, "tierstream: kafka: partition %u: checkpoint on revoke: %s", p,
              c.ToString().c_str());
        }
        {
          MutexLock lock(&claims_mu);
          claims[p] = ClaimState{};  // its images are no longer the changelog's
        }
        pipeline->ReleaseShard(p);
        const uint64_t at = pipeline->InputPositionOf(p).events;
        if (at > 0) committed.Add(options.topic, p, static_cast<int64_t>(at));
        repart.Add(repartition_topic, p, RD_KAFKA_OFFSET_INVALID);
        names += (names.empty() ? "" : ",") + std::to_string(p);
      }
      Log(LogLevel::kInfo, "tierstream: kafka: %s %s partitions [%s]",
          rd_kafka_assignment_lost(rk) ? "lost" : "revoked", options.topic.c_str(), names.c_str());
      if (!rd_kafka_assignment_lost(rk) && committed.list->cnt > 0 && CoordinatorAnswers(rk)) {
        rd_kafka_commit(rk, committed.list, 0 /*sync*/);
      }
      LogError(rd_kafka_incremental_unassign(repartition, repart.list), "unassigning repartition");
      if (cooperative) {
        LogError(rd_kafka_incremental_unassign(rk, parts), "unassign");
      } else {
        rd_kafka_assign(rk, nullptr);
      }
    } else {
      Log(LogLevel::kError, "tierstream: kafka: rebalance: %s", rd_kafka_err2str(err));
      rd_kafka_assign(rk, nullptr);
    }
    MutexLock lock(&stats_mu);
    ++rebalances;
    assigned.clear();
    for (uint32_t p = 0; p < n; ++p) {
      if (partitions[p]->assigned) assigned.push_back(p);
    }
  }

  // Whether a commit would be answered. In a rebalance the group's
  // coordinator just answered; when leaving the group on the way out the
  // cluster may be unreachable, and a synchronous commit would then wait
  // for librdkafka's request timeout (45 s and more) to give up. The offsets
  // committed are for lag tools only (the shard's own position is the
  // truth), so they are skipped when the cluster does not answer a metadata
  // request within 2 s. (Not a read of the committed offsets: librdkafka
  // defers those while the group rebalances, as it does while leaving.)
  bool CoordinatorAnswers(rd_kafka_t* rk) {
    if (!stopping.load(std::memory_order_acquire)) return true;
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, nullptr, &md, 2000);
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Log(LogLevel::kWarning,
          "tierstream: kafka: the cluster does not answer (%s): offsets not committed on "
          "leaving the group (the data dir's positions are the truth)",
          rd_kafka_err2str(err));
      return false;
    }
    return true;
  }

  static void Clear(Partition* part) {
    part->text.Clear();
    part->line_offsets.clear();
    part->lines = 0;
    part->blocks.clear();
    part->records = 0;
    part->bytes = 0;
    part->start = part->next;
  }

  // Takes one message of either consumer.
  void Take(const rd_kafka_message_t* m, bool forwarded) {
    const auto p = static_cast<uint32_t>(m->partition);
    if (p >= n) return;
    Partition& part = *partitions[p];
    if (!part.assigned || part.rewinding || part.failed.load(std::memory_order_acquire)) return;
    const auto offset = static_cast<uint64_t>(m->offset);
    if (offset < (forwarded ? part.next.repartition : part.next.events)) return;  // had it
    std::string_view payload(static_cast<const char*>(m->payload),
                             m->payload == nullptr ? 0 : m->len);
    if (forwarded) {
      part.blocks.emplace_back(payload);
      part.next.repartition = offset + 1;
      forwarded_records.fetch_add(1, std::memory_order_relaxed);
    } else {
      part.line_offsets.emplace_back(part.lines + 1, m->offset);
      part.text.Append(payload);
      part.lines += static_cast<uint64_t>(std::count(payload.begin(), payload.end(), '\n'));
      if (!payload.empty() && payload.back() != '\n') {
        part.text.Append("\n");
        ++part.lines;
      }
      part.next.events = offset + 1;
      records.fetch_add(1, std::memory_order_relaxed);
    }
    ++part.records;
    part.bytes += payload.size();
    if (part.records >= options.batch_records || part.bytes >= options.batch_bytes) Flush(p);
  }

  // Submits partition p's pending records as one batch.
  void Flush(uint32_t p) {
    Partition& part = *partitions[p];
    if (part.records == 0) return;
    auto batch = pipeline->NewBatch();
    batch->input = pipeline::InputSpan{p, part.start, part.next, {}};
    router->Begin(batch.get(), p, &part.line_offsets);
    if (part.text.size() > 0) decoder.DecodeLines(part.text.view(), 1, &batch->arena, router.get());
    router->WriteRejects();
    for (const std::string& block : part.blocks) TakeForwarded(p, block, batch.get());
    // Forwards first: once the batch is durable, its records are not read
    // again, so what it forwards must be in Kafka by then.
    Status s = SendForwards();
    Clear(&part);
    if (!s.ok()) {
      Log(LogLevel::kError, "tierstream: kafka: partition %u: %s; re-reading it", p,
          s.ToString().c_str());
      MarkFailed(&part);
      return;
    }
    part.inflight.fetch_add(1, std::memory_order_acq_rel);
    batches.fetch_add(1, std::memory_order_relaxed);
    pipeline->WaitForCapacity();
    pipeline->Submit(std::move(batch), [&part](pipeline::BatchOutcome outcome) {
      if (!outcome.status.ok()) MarkFailed(&part);
      part.inflight.fetch_sub(1, std::memory_order_acq_rel);
    });
  }

  static void MarkFailed(Partition* part) {
    part->failed_at_ns.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    part->failed.store(true, std::memory_order_release);
  }

  // The events of a forwarded block, into p's batch (strings copied).
  // Events taken before (below the shard's forward mark of their source)
  // are dropped: a partition that read its input again sent them again.
  void TakeForwarded(uint32_t p, std::string_view value, pipeline::Batch* batch) {
    Partition& part = *partitions[p];
    uint32_t source = 0;
    std::string_view block;
    if (!DecodeForward(value, &source, &forward_offsets, &block) || source >= n) {
      Log(LogLevel::kError, "tierstream: kafka: a record of %s[%u] is not a forward; skipped",
          repartition_topic.c_str(), p);
      return;
    }
    state::LogBlockReader reader(block);
    Event e;
    uint64_t misplaced = 0;
    size_t i = 0;
    uint64_t& mark = part.marks[source];
    uint64_t next = mark;
    while (reader.Next(&e)) {
      const uint64_t offset = i < forward_offsets.size() ? forward_offsets[i] : UINT64_MAX;
      ++i;
      if (offset < mark) continue;  // taken before
      next = std::max(next, offset + 1);
      if (KafkaPartitionOf(e.user_id, n) != p) {
        ++misplaced;
        continue;
      }
      e.event_id = batch->arena.Copy(e.event_id);
      e.user_id = batch->arena.Copy(e.user_id);
      e.referrer_id = batch->arena.Copy(e.referrer_id);
      batch->per_shard[p].push_back(e);
    }
    if (next != mark) {
      mark = next;
      auto& marks = batch->input->forwards;
      auto it = std::find_if(marks.begin(), marks.end(),
                             [&](const state::ForwardMark& m) { return m.source == source; });
      if (it == marks.end()) {
        marks.push_back({source, next});
      } else {
        it->next = next;
      }
    }
    if (!reader.ok() || misplaced > 0 || i != forward_offsets.size()) {
      Log(LogLevel::kError,
          "tierstream: kafka: a record of %s[%u] is not a forward of this cluster (%s); skipped",
          repartition_topic.c_str(), p,
          reader.ok() ? "events of other partitions" : "it does not decode");
    }
  }

  Status SendForwards() {
    std::vector<std::vector<Forward>>& forwards = router->forwards();
    uint64_t sent = 0;
    const uint64_t failures_before = delivery_failures.load();
    Status s;
    std::string value;
    for (uint32_t q = 0; q < n; ++q) {
      for (const Forward& forward : forwards[q]) {
        value.clear();
        forward.Encode(&value);
        if (s.ok())
          s = Produce(producer, repartition_topic, static_cast<int32_t>(q), {}, value, nullptr,
                      stopping);
        ++sent;
      }
      forwards[q].clear();
    }
    if (!s.ok()) {
      router->TakeForwarded();
      return s;
    }
    const uint64_t events = router->TakeForwarded();
    if (sent == 0) return Status::Ok();
    forwarded_events.fetch_add(events, std::memory_order_relaxed);
    // Acknowledged by Kafka (the idempotent producer retries until then).
    while (rd_kafka_flush(producer, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      if (stopping.load()) return Status::Unavailable("stopping before forwards were acknowledged");
    }
    if (delivery_failures.load() != failures_before) {
      return Status::Unavailable("forwarding to " + repartition_topic + " failed");
    }
    return Status::Ok();
  }

  // ---- the changelog (kafka/changelog.h)

  // A changelog record's msg_opaque, if its offset is waited for: the
  // delivery report settles and frees it.
  using Acked = std::promise<int64_t>;

  static void OnChangelogDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    // Chained first: whoever waits for the offset checks the chain.
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->partition >= 0 &&
        static_cast<uint32_t>(m->partition) < self->n) {
      self->Chained(static_cast<uint32_t>(m->partition), m->offset,
                    m->len > 0 && static_cast<const char*>(m->payload)[0] ==
                                      static_cast<char>(changelog::Kind::kClaim));
    }
    if (m->_private != nullptr) {
      auto* acked = static_cast<Acked*>(m->_private);
      acked->set_value(m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? m->offset : -1);
      delete acked;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
      return;  // stopping: the partition's next owner writes its state again
    }
    self->changelog_failures.fetch_add(1);
    Log(LogLevel::kError, "tierstream: kafka: a changelog record of %s[%d] was lost: %s",
        rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
  }

  // One of this member's records of changelog partition p was written at
  // `offset` (in the order they were produced).
  void Chained(uint32_t p, int64_t offset, bool claim) {
    MutexLock lock(&chains_mu);
    Chain& c = chains[p];
    if (claim) {
      c = Chain{offset, offset + 1, {}};
      return;
    }
    if (c.next < 0) return;
    if (offset > c.next) c.gaps.emplace_back(c.next, offset - 1);
    c.next = offset + 1;
  }

  // Produces a changelog record of partition p; with `offset`, its offset
  // once acknowledged (-1 if it was not written).
  Status ProduceChangelog(uint32_t p, std::string_view value,
                          std::future<int64_t>* offset = nullptr) {
    Acked* acked = nullptr;
    if (offset != nullptr) {
      acked = new Acked;
      *offset = acked->get_future();
    }
    Status s = Produce(changelog_producer, changelog_topic, static_cast<int32_t>(p), {}, value,
                       acked, stopping);
    if (!s.ok()) delete acked;
    return s;
  }

  // The changes of a checkpoint, as changes records of at most about 512 KB.
  Status ProduceChanges(uint32_t p, uint64_t generation, uint64_t checkpoint,
                        const std::vector<std::string>& changes) {
    std::string value;
    size_t begin = 0;
    while (begin < changes.size()) {
      size_t end = begin, bytes = 0;
      while (end < changes.size() && (end == begin || bytes + changes[end].size() < 512u << 10)) {
        bytes += changes[end++].size();
      }
      value.clear();
      changelog::EncodeChanges(generation, checkpoint, changes, begin, end, &value);
      Status s = ProduceChangelog(p, value);
      if (!s.ok()) return s;
      begin = end;
    }
    return Status::Ok();
  }

  // Whether this member owned partition p under `generation` through its
  // changelog record at `marker`: no claim among the records others wrote
  // between its claim and that one. (ChangePublisher's fence check, on its
  // thread: it reads with fence_reader.)
  Result<bool> Owns(uint32_t p, uint64_t generation, int64_t marker) {
    std::vector<std::pair<int64_t, int64_t>> gaps;
    {
      MutexLock lock(&chains_mu);
      const Chain& c = chains[p];
      // Claimed again since: which records came between is not tracked.
      if (c.claim < 0 || changelog::GenerationOf(c.claim) != generation || marker >= c.next) {
        return false;
      }
      for (const auto& gap : c.gaps) {
        if (gap.first < marker) gaps.push_back(gap);
      }
    }
    bool claimed = false;
    for (const auto& [from, through] : gaps) {
      Status s =
          ReadChangelog(fence_reader, p, from, through, [&](int64_t, std::string_view value) {
            changelog::Record r;
            if (changelog::Decode(value, &r) && r.kind == changelog::Kind::kClaim) {
              claimed = true;
            }
            return Status::Ok();
          });
      if (!s.ok()) return s;
      if (claimed) return false;
    }
    return true;
  }

  // The changes of checkpoint `checkpoint` of p are in PREFIX-changes.
  void Published(uint32_t p, uint64_t generation, uint64_t checkpoint) {
    std::string value;
    changelog::EncodePublished(generation, checkpoint, &value);
    if (Status s = ProduceChangelog(p, value); !s.ok()) {
      Log(LogLevel::kWarning, "tierstream: kafka: partition %u: %s", p, s.ToString().c_str());
    }
  }

  // Writes a claim of partition p; its offset (once acknowledged) is the
  // new owner generation.
  Result<uint64_t> Claim(uint32_t p) {
    std::string value;
    changelog::EncodeClaim(instance_name, &value);
    std::future<int64_t> offset;
    Status s = ProduceChangelog(p, value, &offset);
    if (!s.ok()) return s;
    while (offset.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      rd_kafka_poll(changelog_producer, 50);
      if (stopping.load()) return Status::Unavailable("stopping before the claim was written");
    }
    const int64_t at = offset.get();
    if (at < 0) return Status::Unavailable("the claim of " + changelog_topic + " was not written");
    return changelog::GenerationOf(at);
  }

  // Calls fn(offset, value) for the records of changelog partition p from
  // offset `from` (-1: the first) through offset `through`.
  Status ReadChangelog(rd_kafka_t* reader, uint32_t p, int64_t from, int64_t through,
                       const std::function<Status(int64_t, std::string_view)>& fn) {
    PartitionList list;
    list.Add(changelog_topic, p, from < 0 ? RD_KAFKA_OFFSET_BEGINNING : from);
    if (rd_kafka_resp_err_t e = rd_kafka_assign(reader, list.list)) {
      return Status::Unavailable(std::string("reading ") + changelog_topic + ": " +
                                 rd_kafka_err2str(e));
    }
    Status result;
    auto idle_since = Clock::now();
    for (;;) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(reader, 200);
      if (m == nullptr) {
        if (Clock::now() - idle_since > std::chrono::seconds(60)) {
          result = Status::Unavailable("reading " + changelog_topic + "[" + std::to_string(p) +
                                       "]: no record for 60 s");
          break;
        }
        continue;
      }
      idle_since = Clock::now();
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) ReportError(m);
        rd_kafka_message_destroy(m);
        continue;
      }
      const int64_t offset = m->offset;
      result = fn(offset, std::string_view(static_cast<const char*>(m->payload), m->len));
      rd_kafka_message_destroy(m);
      if (!result.ok() || offset >= through) break;
    }
    rd_kafka_assign(reader, nullptr);
    return result;
  }

  // Takes partition p over: a claim, then the shard made what the changelog
  // says (rebuilt from it unless the local state is its newest checkpoint),
  // then its base written under the new generation.
  Status TakeOver(uint32_t p) {
    {
      MutexLock lock(&claims_mu);
      claims[p] = ClaimState{};
    }
    auto claimed = Claim(p);
    if (!claimed.ok()) return claimed.status();
    const uint64_t generation = *claimed;
    {
      // Its own checkpoint's changes are kept for its base (OnCheckpoint).
      MutexLock lock(&claims_mu);
      claims[p].generation = generation;
    }
    const int64_t claim_offset = static_cast<int64_t>(generation) - 1;  // read through it
    const std::vector<std::string> meta_keys = pipeline::Pipeline::ShardMetaKeys(p);
    changelog::RestorePlan plan;
    auto rebuild = [&](const pipeline::ShardMark& local, state::Store* store) -> Result<bool> {
      const auto start = Clock::now();
      Status s = ReadChangelog(changelog_reader, p, -1, claim_offset,
                               [&](int64_t offset, std::string_view value) {
                                 changelog::Record r;
                                 if (changelog::Decode(value, &r)) plan.Add(offset, r);
                                 return Status::Ok();
                               });
      if (!s.ok()) return s;
      const std::optional<pipeline::ShardMark>& newest = plan.newest();
      const bool same =
          newest ? local.generation == newest->generation && local.checkpoint == newest->checkpoint
                 : local.generation == 0;
      if (same) {
        if (newest) {
          Log(LogLevel::kInfo,
              "tierstream: kafka: partition %u: the local state is the changelog's newest "
              "(generation %llu, checkpoint %llu)",
              p, static_cast<unsigned long long>(local.generation),
              static_cast<unsigned long long>(local.checkpoint));
        }
        return false;
      }
      s = store->WipeShard(p, meta_keys);
      uint64_t bytes = 0, chunks = 0;
      if (s.ok() && newest) {
        s = ReadChangelog(changelog_reader, p, plan.first_offset(), claim_offset,
                          [&](int64_t offset, std::string_view value) {
                            changelog::Record r;
                            if (!plan.Applies(offset) || !changelog::Decode(value, &r)) {
                              return Status::Ok();
                            }
                            bytes += r.payload.size();
                            ++chunks;
                            return store->ApplyImage(p, meta_keys, r.payload);
                          });
      }
      if (!s.ok()) return s;
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      const double mb = static_cast<double>(bytes) / 1e6;
      restores.fetch_add(1);
      restored_bytes.fetch_add(bytes);
      restore_micros.fetch_add(static_cast<uint64_t>(seconds * 1e6));
      Log(LogLevel::kInfo,
          "tierstream: kafka: partition %u restored from %s: %llu chunks, %.1f MB in %.3f s "
          "(%.1f MB/s); it resumes at offset %llu (repartition %llu)",
          p, changelog_topic.c_str(), static_cast<unsigned long long>(chunks), mb, seconds,
          seconds > 0 ? mb / seconds : 0.0,
          static_cast<unsigned long long>(newest ? newest->position.events : 0),
          static_cast<unsigned long long>(newest ? newest->position.repartition : 0));
      return true;
    };
    auto publish_base = [&](std::vector<std::string> base, const pipeline::ShardMark& mark) {
      // What the checkpoints it restored changed and nobody published goes
      // first: once its base is written, the next owner looks no further.
      std::vector<std::string_view> again, changes;
      for (const changelog::RestorePlan::Unpublished& u : plan.unpublished()) {
        if (!changelog::DecodeChanges(u.payload, &changes)) {
          return Status::Corruption("a changes record of " + changelog_topic + "[" +
                                    std::to_string(p) + "] does not decode");
        }
        again.insert(again.end(), changes.begin(), changes.end());
      }
      if (!again.empty()) {
        Status s = publisher->ProduceNow(p, generation, again);
        if (!s.ok()) return s;
        Log(LogLevel::kInfo,
            "tierstream: kafka: partition %u: produced %zu tier changes its previous owner had "
            "not published",
            p, again.size());
      }
      std::vector<std::string> base_changes;
      std::future<int64_t> marker;
      {
        MutexLock lock(&claims_mu);
        ClaimState& claim = claims[p];
        Status s;
        std::string value;
        for (const std::string& chunk : base) {
          value.clear();
          changelog::EncodeChunk(generation, mark.checkpoint, chunk, &value);
          if (s.ok()) s = ProduceChangelog(p, value);
        }
        if (s.ok()) s = ProduceChanges(p, generation, mark.checkpoint, claim.base_changes);
        value.clear();
        changelog::EncodeMarker(mark, true /*base*/, &value);
        if (s.ok()) s = ProduceChangelog(p, value, &marker);
        if (!s.ok()) return s;
        claim.based = true;
        base_changes = std::exchange(claim.base_changes, {});
      }
      // Unlocked: it may wait for room in the publisher's queue.
      if (!base_changes.empty()) {
        publisher->Publish(p, generation, mark.checkpoint, std::move(base_changes),
                           std::move(marker));
      }
      return Status::Ok();
    };
    return pipeline->ClaimShard(p, generation, rebuild, publish_base);
  }

  // A committed checkpoint of a shard: into the changelog, if this member
  // owns it under the generation it was taken in.
  void OnCheckpoint(const pipeline::CheckpointImage& image) {
    if (image.shard >= n) return;
    const uint32_t p = image.shard;
    std::future<int64_t> marker;
    uint64_t generation = 0;
    {
      MutexLock lock(&claims_mu);
      if (!WriteCheckpoint(image, &marker)) return;
      generation = claims[p].generation;
    }
    // Unlocked: it may wait for room in the publisher's queue.
    if (marker.valid() && !image.changes.empty()) {
      publisher->Publish(p, generation, image.mark.checkpoint, image.changes, std::move(marker));
    }
  }

  // OnCheckpoint's writes; true if a complete checkpoint's marker was
  // produced (*marker: its offset to come).
  bool WriteCheckpoint(const pipeline::CheckpointImage& image, std::future<int64_t>* marker)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(claims_mu) {
    const uint32_t p = image.shard;
    ClaimState& claim = claims[p];
    if (image.mark.generation != claim.generation) return false;
    if (!claim.based) {
      // The claim's own checkpoint (TakeOver): its changes go with the base.
      claim.base_changes.insert(claim.base_changes.end(), image.changes.begin(),
                                image.changes.end());
      return false;
    }
    Status s;
    std::string value;
    for (const std::string& chunk : image.chunks) {
      value.clear();
      changelog::EncodeChunk(claim.generation, image.mark.checkpoint, chunk, &value);
      if (s.ok()) s = ProduceChangelog(p, value);
    }
    if (image.complete) {
      if (s.ok()) s = ProduceChanges(p, claim.generation, image.mark.checkpoint, image.changes);
      value.clear();
      changelog::EncodeMarker(image.mark, false, &value);
      if (s.ok()) s = ProduceChangelog(p, value, marker);
    }
    if (!s.ok()) {
      // The chain would miss a link: no more increments (a takeover then
      // restores the last complete checkpoint and reads the input after it).
      claim.based = false;
      Log(LogLevel::kError, "tierstream: kafka: partition %u: changelog write failed: %s", p,
          s.ToString().c_str());
      return false;
    }
    return image.complete;
  }

  // A partition whose batch failed is read again from its shard's position,
  // once its batches in flight are done and ingest is no longer refused.
  void Rewind(uint32_t p) {
    Partition& part = *partitions[p];
    if (!part.rewinding) {
      part.rewinding = true;
      Clear(&part);
    }
    if (part.inflight.load(std::memory_order_acquire) > 0 ||
        Clock::now().time_since_epoch().count() -
                part.failed_at_ns.load(std::memory_order_relaxed) <
            std::chrono::nanoseconds(std::chrono::milliseconds(200)).count() ||
        !pipeline->IngestRefusals().empty()) {
      return;
    }
    const InputPosition at = pipeline->InputPositionOf(p);
    PartitionList events, repart;
    events.Add(options.topic, p, static_cast<int64_t>(at.events));
    repart.Add(repartition_topic, p, static_cast<int64_t>(at.repartition));
    // -1: librdkafka 2.0.2 reads a finite timeout here as microseconds.
    LogError(rd_kafka_seek_partitions(consumer, events.list, -1), "seek");
    LogError(rd_kafka_seek_partitions(repartition, repart.list, -1), "seek");
    part.next = part.start = at;
    part.marks = pipeline->ForwardMarksOf(p);
    part.marks.resize(n, 0);
    part.rewinding = false;
    part.failed.store(false);
    rewinds.fetch_add(1, std::memory_order_relaxed);
    Log(LogLevel::kWarning,
        "tierstream: kafka: partition %u re-read from offset %llu (repartition %llu) after a "
        "failed batch",
        p, static_cast<unsigned long long>(at.events),
        static_cast<unsigned long long>(at.repartition));
  }

  void Run() {
    std::vector<rd_kafka_message_t*> messages(4096);
    rd_kafka_queue_t* input_queue = rd_kafka_queue_get_consumer(consumer);
    rd_kafka_queue_t* repart_queue = rd_kafka_queue_get_consumer(repartition);
    while (!stopping.load(std::memory_order_acquire)) {
      for (uint32_t p = 0; p < n; ++p) {
        if (partitions[p]->failed.load(std::memory_order_acquire)) Rewind(p);
      }
      // The repartition topic without waiting, then the input topic (which
      // also serves the group's rebalances) for up to 20 ms.
      size_t got = Drain(repart_queue, 0, true, &messages);
      got += Drain(input_queue, got > 0 ? 0 : 20, false, &messages);
      // Nothing more waiting: what was read goes now.
      if (got < messages.size() / 2) {
        for (uint32_t p = 0; p < n; ++p) Flush(p);
      }
      char reason[512];
      if (rd_kafka_fatal_error(consumer, reason, sizeof reason) != RD_KAFKA_RESP_ERR_NO_ERROR ||
          rd_kafka_fatal_error(producer, reason, sizeof reason) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (on_fatal) on_fatal(Status::Unavailable(std::string("kafka: fatal error: ") + reason));
        break;
      }
      rd_kafka_poll(changelog_producer, 0);  // its delivery reports
    }
    rd_kafka_queue_destroy(input_queue);
    rd_kafka_queue_destroy(repart_queue);
  }

  // Takes what a queue holds (waiting up to `timeout_ms` for the first);
  // returns how many messages it took.
  size_t Drain(rd_kafka_queue_t* queue, int timeout_ms, bool forwarded,
               std::vector<rd_kafka_message_t*>* messages) {
    const ssize_t k =
        rd_kafka_consume_batch_queue(queue, timeout_ms, messages->data(), messages->size());
    const size_t got = k > 0 ? static_cast<size_t>(k) : 0;
    for (size_t i = 0; i < got; ++i) {
      rd_kafka_message_t* m = (*messages)[i];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        Take(m, forwarded);
      } else {
        ReportError(m);
      }
      rd_kafka_message_destroy(m);
    }
    return got;
  }

  void ReportError(const rd_kafka_message_t* m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    Log(LogLevel::kWarning, "tierstream: kafka: %s", rd_kafka_message_errstr(m));
  }
};

KafkaIngest::KafkaIngest(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaIngest::~KafkaIngest() { Stop(); }

void KafkaIngest::OnCheckpoint(const pipeline::CheckpointImage& image) {
  impl_->OnCheckpoint(image);
}

Result<std::unique_ptr<KafkaIngest>> KafkaIngest::Start(
    const KafkaOptions& options, pipeline::Pipeline* pipeline,
    std::function<void(const Status& failure)> on_fatal) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->pipeline = pipeline;
  impl->on_fatal = std::move(on_fatal);
  impl->n = pipeline->shards();
  impl->repartition_topic = InternalTopic(options, "repartition");
  impl->changelog_topic = InternalTopic(options, "changelog");
  {
    MutexLock lock(&impl->claims_mu);
    impl->claims.resize(impl->n);
  }
  {
    MutexLock lock(&impl->chains_mu);
    impl->chains.resize(impl->n);
  }
  impl->instance_name = InstanceName(options);
  for (uint32_t p = 0; p < impl->n; ++p)
    impl->partitions.push_back(std::make_unique<Impl::Partition>());
  impl->router = std::make_unique<Router>(impl->n, pipeline->reject_log(), options.topic);

  // The group's member: offsets are the shards' (assigned explicitly), so
  // nothing is committed or stored by itself.
  auto conf = NewConf(options, {{"group.id", options.group},
                                {"partition.assignment.strategy", "cooperative-sticky"},
                                {"enable.auto.commit", "false"},
                                {"enable.auto.offset.store", "false"},
                                {"auto.offset.reset", "earliest"},
                                {"client.id", "tierstream"}});
  if (!conf.ok()) return conf.status();
  if (!options.instance_id.empty()) {
    char err[512];
    if (rd_kafka_conf_set(*conf, "group.instance.id", options.instance_id.c_str(), err,
                          sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(*conf);
      return Status::InvalidArgument(std::string("kafka: --instance-id: ") + err);
    }
  }
  rd_kafka_conf_set_opaque(*conf, impl.get());
  rd_kafka_conf_set_rebalance_cb(*conf, Impl::OnRebalance);
  auto consumer = NewClient(RD_KAFKA_CONSUMER, *conf);
  if (!consumer.ok()) return consumer.status();
  impl->consumer = *consumer;
  rd_kafka_poll_set_consumer(impl->consumer);

  // A group id gives it a consumer queue; it never joins (assigned by hand).
  conf = NewConf(options, {{"group.id", options.group + "-repartition"},
                           {"enable.auto.commit", "false"},
                           {"enable.auto.offset.store", "false"},
                           {"auto.offset.reset", "earliest"},
                           {"client.id", "tierstream-repartition"}});
  if (!conf.ok()) return conf.status();
  auto repartition = NewClient(RD_KAFKA_CONSUMER, *conf);
  if (!repartition.ok()) return repartition.status();
  impl->repartition = *repartition;
  rd_kafka_poll_set_consumer(impl->repartition);

  conf = NewConf(
      options,
      {{"enable.idempotence", "true"}, {"linger.ms", "1"}, {"client.id", "tierstream-forward"}});
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_opaque(*conf, impl.get());
  rd_kafka_conf_set_dr_msg_cb(*conf, Impl::OnDelivery);
  auto producer = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!producer.ok()) return producer.status();
  impl->producer = *producer;

  // The changelog's producer never gives a record up (message.timeout.ms
  // 0): a link missing from a chain would break every later restore.
  conf = NewConf(options, {{"enable.idempotence", "true"},
                           {"linger.ms", "5"},
                           {"message.timeout.ms", "0"},
                           {"client.id", "tierstream-changelog"}});
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_opaque(*conf, impl.get());
  rd_kafka_conf_set_dr_msg_cb(*conf, Impl::OnChangelogDelivery);
  producer = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!producer.ok()) return producer.status();
  impl->changelog_producer = *producer;
  conf = NewConf(options, {{"group.id", options.group + "-changelog"},
                           {"enable.auto.commit", "false"},
                           {"enable.auto.offset.store", "false"},
                           {"enable.partition.eof", "false"},
                           {"fetch.wait.max.ms", "10"},
                           {"client.id", "tierstream-restore"}});
  if (!conf.ok()) return conf.status();
  auto reader = NewClient(RD_KAFKA_CONSUMER, *conf);
  if (!reader.ok()) return reader.status();
  impl->changelog_reader = *reader;
  rd_kafka_poll_set_consumer(impl->changelog_reader);

  conf = NewConf(options, {{"group.id", options.group + "-changelog"},
                           {"enable.auto.commit", "false"},
                           {"enable.auto.offset.store", "false"},
                           {"enable.partition.eof", "false"},
                           {"fetch.wait.max.ms", "10"},
                           {"client.id", "tierstream-fence"}});
  if (!conf.ok()) return conf.status();
  reader = NewClient(RD_KAFKA_CONSUMER, *conf);
  if (!reader.ok()) return reader.status();
  impl->fence_reader = *reader;
  rd_kafka_poll_set_consumer(impl->fence_reader);
  Impl* self = impl.get();
  auto publisher = ChangePublisher::Start(
      options, {[self](uint32_t p, uint64_t generation, int64_t marker) {
                  return self->Owns(p, generation, marker);
                },
                [self](uint32_t p, uint64_t generation, uint64_t checkpoint) {
                  self->Published(p, generation, checkpoint);
                },
                [self] { rd_kafka_poll(self->changelog_producer, 10); }});
  if (!publisher.ok()) return publisher.status();
  impl->publisher = std::move(publisher).value();

  PartitionList topics;
  topics.Add(options.topic, 0, RD_KAFKA_OFFSET_INVALID);
  topics.list->elems[0].partition = RD_KAFKA_PARTITION_UA;
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(impl->consumer, topics.list)) {
    return Status::InvalidArgument("kafka: subscribing to " + options.topic + ": " +
                                   rd_kafka_err2str(err));
  }
  Log(LogLevel::kInfo,
      "tierstream: kafka: consuming %s (%u partitions) in group %s via %s; forwards to %s",
      options.topic.c_str(), impl->n, options.group.c_str(), options.bootstrap.c_str(),
      impl->repartition_topic.c_str());
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    NameThisThread("kafka-input");
    raw->Run();
  });
  return std::unique_ptr<KafkaIngest>(new KafkaIngest(std::move(impl)));
}

void KafkaIngest::Stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  d.stopping.store(true, std::memory_order_release);
  if (d.thread.joinable()) d.thread.join();
  // Leaving the group revokes every partition (the callback waits for the
  // batches in flight), so the other members take them over at once.
  if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(d.consumer)) {
    Log(LogLevel::kWarning, "tierstream: kafka: leaving the group: %s", rd_kafka_err2str(err));
  }
  rd_kafka_consumer_close(d.repartition);
  for (auto& part : d.partitions) {
    while (part->inflight.load(std::memory_order_acquire) > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // The revoked partitions' last checkpoints: their markers acknowledged
  // (flushing serves the delivery reports), then their changes published.
  FlushForShutdown(d.changelog_producer, 10'000);
  d.publisher->Stop();
  FlushForShutdown(d.changelog_producer, 10'000);  // the published records
}

std::vector<std::pair<uint32_t, uint64_t>> KafkaIngest::OwnedPartitions() const {
  const Impl& d = *impl_;
  std::vector<std::pair<uint32_t, uint64_t>> owned;
  MutexLock lock(&d.claims_mu);
  for (uint32_t p = 0; p < d.n; ++p) {
    if (d.claims[p].based) owned.emplace_back(p, d.claims[p].generation);
  }
  return owned;
}

pipeline::InputStats KafkaIngest::Stats() const {
  const Impl& d = *impl_;
  pipeline::InputStats s;
  s.topic = d.options.topic;
  s.group = d.options.group;
  std::vector<uint32_t> assigned;
  {
    MutexLock lock(&d.stats_mu);
    assigned = d.assigned;
    s.rebalances = d.rebalances;
  }
  for (uint32_t p : assigned) {
    pipeline::InputPartitionStats ps;
    ps.partition = p;
    ps.position = d.pipeline->InputPositionOf(p).events;
    int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(d.consumer, d.options.topic.c_str(), static_cast<int32_t>(p),
                                       &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      ps.end = high;
      ps.lag = std::max<int64_t>(0, high - static_cast<int64_t>(ps.position));
    }
    s.assigned.push_back(ps);
  }
  s.records = d.records.load(std::memory_order_relaxed);
  s.forwarded_in = d.forwarded_records.load(std::memory_order_relaxed);
  s.forwarded_out = d.forwarded_events.load(std::memory_order_relaxed);
  s.batches = d.batches.load(std::memory_order_relaxed);
  s.rewinds = d.rewinds.load(std::memory_order_relaxed);
  s.restores = d.restores.load(std::memory_order_relaxed);
  s.restored_bytes = d.restored_bytes.load(std::memory_order_relaxed);
  s.restore_seconds = static_cast<double>(d.restore_micros.load(std::memory_order_relaxed)) / 1e6;
  s.changes_published = d.publisher->published();
  s.changes_fenced = d.publisher->fenced();
  return s;
}

}  // namespace tierstream::kafka
