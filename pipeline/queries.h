// The typed answers of Pipeline's queries, and Await, the one blocking way
// to ask one. JSON is not made here: the server renders these values
// (server/wire_json.h).
//
// A query is fanned out to the shard(s) that hold its data, answered on
// their worker threads after every batch that completed before it was asked,
// and gathered into one of these values; the callback runs once, on a worker
// thread, and must not block.
//
// Thread safety: the answer types are plain values. Await is thread-safe,
// but must not be called on a worker thread (it would wait for itself).
#ifndef TIERSTREAM_PIPELINE_QUERIES_H_
#define TIERSTREAM_PIPELINE_QUERIES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/latency_histogram.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/time.h"
#include "state/explain.h"
#include "state/kpis.h"
#include "state/profile.h"
#include "state/store.h"
#include "state/tier_change.h"

namespace tierstream::pipeline {

// A user's profile, evaluated as of T when her shard answered.
// Not ok: she exists but her state could not be read back from the store
// (the profile is empty) — not the same answer as an unknown user — or her
// shard failed (kInternal: whether she exists is not known; see
// PipelineOptions::on_failure).
struct ProfileReport {
  state::Profile profile;
  int64_t as_of = kNoTs;
  Status status;
};

// Why a user has her tier, when it changes next with no event of hers, and
// what she lacks for the others (state/explain.h), as of T when her shard
// answered. Not ok: as ProfileReport (the explanation is empty).
struct ExplainReport {
  std::string user_id;
  state::Explanation explanation;
  int64_t as_of = kNoTs;
  Status status;
};

// The KPIs summed over every shard, as of T (kNoTs before the first event).
// One partition's share of the KPIs (the Kafka mode), with the owner
// generation it was counted under: when two instances report a partition
// (one taking it over), the newer owner's counts.
struct PartitionKpis {
  uint32_t partition = 0;
  uint64_t generation = 0;
  state::KpiPartial kpis;
};

struct KpiReport {
  state::KpiPartial kpis;
  int64_t as_of = kNoTs;
  Status status;  // not ok: a shard failed and could not add its share (the sums are partial)
  // The Kafka mode: the sums are of the partitions this instance owns, of
  // `partitions_total` (rendered as "partitions": {"reporting", "total"}),
  // and each one's share, in partition order.
  bool partitioned = false;
  uint32_t partitions_reporting = 0;
  uint32_t partitions_total = 0;
  std::vector<PartitionKpis> partitions;
};

// One page of a tier's members, in user-id order (Pipeline::ListTierPage).
struct TierPage {
  std::vector<std::string> user_ids;
  // Asked with profiles: each member's profile, in the same order as
  // user_ids (read from the store as its shard's checkpoint left it).
  std::vector<ProfileReport> profiles;
  bool more = false;  // members follow the last one of this page
  // Not ok: a shard's members could not be read, or its shard failed (the
  // page is partial).
  Status status;
};

// Operational figures (GET /healthz), summed over every shard (but a
// failed one: see PipelineOptions::on_failure).
struct PipelineStats {
  uint64_t shards = 0;
  uint64_t resident_users = 0;
  uint64_t max_resident_users = 0;  // the bound, across all shards
  uint64_t reloads = 0;             // evicted users read back (from the warm tier or the store)
  uint64_t warm_reloads = 0;
  uint64_t warm_users = 0;  // evicted users kept encoded in memory
  uint64_t warm_bytes = 0;
  uint64_t dirty_users = 0;
  uint64_t remembered_ids = 0;
  uint64_t spilled_ids = 0;  // in runs on disk (a filter of ~1.6 B each in memory)
  uint64_t id_runs = 0;
  uint64_t events_beyond_horizon = 0;  // accepted though older than the duplicate horizon
  int64_t events_in_flight = 0;        // submitted, not yet completed

  // For GET /metrics (not in /healthz):
  // Committed checkpoints, every shard's, from the start of a snapshot to
  // its commit; commits that failed; the write batch of the latest one.
  HistogramSnapshot checkpoint_seconds;
  uint64_t checkpoint_failures = 0;
  uint64_t last_checkpoint_bytes = 0;
  // The data dir's file system: free bytes (sampled at most 50 ms before)
  // and the watermark under which ingest is refused.
  uint64_t disk_free_bytes = 0;
  uint64_t min_free_bytes = 0;
  // RocksDB's figures and the change feed's bytes, sampled by the
  // committer at most a second before (or a long commit before).
  state::StoreFigures store;
  uint64_t changes_bytes = 0;
};

namespace internal {
template <typename Callback>
struct CallbackArg;
template <typename Answer>
struct CallbackArg<std::function<void(Answer)>> {
  using type = Answer;
};
// The answer type of a query member function: the argument of its last
// parameter, a std::function<void(Answer)>.
template <typename Query>
struct QueryAnswer;
template <typename Target, typename... Params>
struct QueryAnswer<void (Target::*)(Params...)> {
  using type = typename CallbackArg<
      std::tuple_element_t<sizeof...(Params) - 1, std::tuple<Params...>>>::type;
};
}  // namespace internal

// Asks `query` of `target` with `args` (every parameter but the callback)
// and blocks until it answers: `Await(p, &Pipeline::GetKpis)`,
// `Await(p, &Pipeline::GetUser, id)`. For tools and tests.
// REQUIRES: not called on a thread that must answer the query.
template <typename Target, typename Query, typename... Args>
typename internal::QueryAnswer<Query>::type Await(Target& target, Query query, Args&&... args) {
  using Answer = typename internal::QueryAnswer<Query>::type;
  // Shared with the callback: the worker may still hold it after the wait ends.
  struct Slot {
    Mutex mu;
    CondVar cv{&mu};
    std::optional<Answer> answer ABSL_GUARDED_BY(mu);
  };
  auto slot = std::make_shared<Slot>();
  (target.*query)(std::forward<Args>(args)..., [slot](Answer a) {
    MutexLock lock(&slot->mu);
    slot->answer.emplace(std::move(a));
    slot->cv.Signal();
  });
  MutexLock lock(&slot->mu);
  while (!slot->answer.has_value()) slot->cv.Wait();
  return std::move(*slot->answer);
}

// Which changes a feed reader wants: bit i of `to` for TierName(Tier(i)),
// and of `from` as well, with bit kNone for a first tier.
struct ChangeFilter {
  uint32_t to = ~0u;
  uint32_t from = ~0u;
  bool Matches(const state::TierChange& c) const {
    return ((to >> static_cast<int>(c.to)) & 1u) != 0 &&
           ((from >> static_cast<int>(c.from)) & 1u) != 0;
  }
};

// A page of the change feed.
struct ChangePage {
  Status status;        // not ok: the store could not be read
  bool gone = false;    // `after` is older than retention (HTTP 410): resume after `oldest`
  uint64_t oldest = 0;  // the feed starts after this cursor
  std::vector<std::pair<uint64_t, state::TierChange>> changes;  // (cursor, change), in order
  uint64_t next = 0;                                            // resume after this cursor
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_QUERIES_H_
