// Queries: each is fanned out to the worker(s) holding its data, answered
// there between groups (or between slices of a group), and gathered into one
// typed answer (queries.h) by the last worker to answer.
#include "pipeline/queries.h"

#include <algorithm>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/pipeline_impl.h"
#include "state/kpis.h"

namespace tierstream::pipeline {

void Pipeline::GetUser(std::string user_id,
                       std::function<void(std::optional<ProfileReport>)> done) {
  auto* q = new Query{};
  q->kind = Query::Kind::kUser;
  q->user_done = std::move(done);
  auto& w = *impl_->workers[ShardOf(user_id, shards(), impl_->options.placement)];
  q->user_id = std::move(user_id);
  w.queries.enqueue(q);
  w.queue.enqueue(Task{nullptr});
}

void Pipeline::ExplainUser(std::string user_id,
                           std::function<void(std::optional<ExplainReport>)> done) {
  auto* q = new Query{};
  q->kind = Query::Kind::kExplain;
  q->explain_done = std::move(done);
  auto& w = *impl_->workers[ShardOf(user_id, shards(), impl_->options.placement)];
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

void Pipeline::Impl::Broadcast(Query::Kind kind, const std::shared_ptr<Query::Gather>& g,
                               const std::string& after) {
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

void Pipeline::Impl::AnswerQueries(Worker* w, bool mid_group, bool stats_only, bool applying) {
  Query* q;
  for (;;) {
    if (!mid_group && !stats_only && !w->deferred.empty()) {
      q = w->deferred.back();
      w->deferred.pop_back();
    } else if (!w->queries.try_dequeue(q)) {
      break;
    }
    if ((mid_group && q->kind == Query::Kind::kListTier) ||
        (applying && q->kind == Query::Kind::kKpis) ||
        (stats_only && q->kind != Query::Kind::kStats)) {
      w->deferred.push_back(q);
      continue;
    }
    // Should the worker fail before this shard's share is given, its
    // failed_part.cc answers the query.
    w->answering.reset(q);
    const int64_t t = watermark.load(std::memory_order_acquire);
    const int32_t today = t == kNoTs ? kNoDay : DayOf(t, options.config.utc_offset_ms);
    switch (q->kind) {
      case Query::Kind::kUser: {
        std::optional<ProfileReport> answer;
        ProfileReport r;
        r.as_of = t;
        if (today != kNoDay && w->state.GetProfile(q->user_id, today, &r.profile)) {
          answer = std::move(r);
        } else if (Status read = w->state.TakeUserError(); !read.ok()) {
          r.status = std::move(read);
          answer = std::move(r);
        }
        const std::unique_ptr<Query> owned = std::move(w->answering);
        q->user_done(std::move(answer));
        break;
      }
      case Query::Kind::kExplain: {
        ExplainReport r;
        r.as_of = t;
        // Read as GetProfile reads her (evicted: back from the store) and
        // evaluated now, so it is exact even while a sweep is in progress.
        const state::UserState* s = today == kNoDay ? nullptr : w->state.GetUserState(q->user_id);
        const std::unique_ptr<Query> owned = std::move(w->answering);  // answered below
        if (s != nullptr) {
          r.user_id = std::move(q->user_id);
          r.explanation = state::Explain(*s, today, options.config);
          q->explain_done(std::move(r));
        } else if (Status read = w->state.TakeUserError(); !read.ok()) {
          r.status = std::move(read);
          q->explain_done(std::move(r));
        } else {
          q->explain_done(std::nullopt);
        }
        break;
      }
      case Query::Kind::kStats: {
        auto& g = *q->gather;
        {
          MutexLock lock(&g.mu);
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
        const std::unique_ptr<Query> owned = std::move(w->answering);
        if (g.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) FinishGather(q->kind, &g);
        break;
      }
      case Query::Kind::kKpis:
      case Query::Kind::kListTier: {
        auto& g = *q->gather;
        if (today != kNoDay) w->state.Sweep(today, SIZE_MAX);  // tiers exactly as of T
        std::vector<std::pair<std::string, ProfileReport>> members;
        Status listed;
        if (q->kind == Query::Kind::kListTier) {
          // One more than the page: whether another member follows it.
          members =
              ListTierOf(w, g.tier, q->after, g.limit + 1, g.with_profiles, today, t, &listed);
        }
        {
          MutexLock lock(&g.mu);
          if (q->kind == Query::Kind::kKpis) {
            // The Kafka mode: a partition another instance owns is its to count.
            if (w->owned.load(std::memory_order_acquire)) {
              const state::KpiPartial share = w->state.Kpis(today);
              g.kpis.Add(share);
              ++g.reporting;
              if (options.placement == Placement::kKafka) {
                g.partitions.push_back({w->id, w->state.owner_generation(), share});
              }
            }
            g.as_of = std::max(g.as_of, t);
          } else if (w->owned.load(std::memory_order_acquire)) {
            g.members.insert(g.members.end(), std::make_move_iterator(members.begin()),
                             std::make_move_iterator(members.end()));
            if (g.error.ok() && !listed.ok()) g.error = listed;
          }
        }
        const std::unique_ptr<Query> owned = std::move(w->answering);
        if (g.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) FinishGather(q->kind, &g);
        break;
      }
    }
  }
}

void Pipeline::Impl::FinishGather(Query::Kind kind, Query::Gather* g) {
  switch (kind) {
    case Query::Kind::kUser:
    case Query::Kind::kExplain:
      break;  // not gathered
    case Query::Kind::kStats: {
      PipelineStats stats;
      {
        MutexLock lock(&g->mu);
        stats = g->stats;
      }
      stats.shards = workers.size();
      stats.max_resident_users = ResidentLimit() * workers.size();
      stats.events_in_flight = inflight.load();
      stats.checkpoint_seconds = checkpoint_seconds.Snapshot();
      stats.checkpoint_failures = checkpoint_failures.load(std::memory_order_relaxed);
      stats.last_checkpoint_bytes = last_checkpoint_bytes.load(std::memory_order_relaxed);
      stats.disk_free_bytes = disk.FreeBytes();
      stats.min_free_bytes = disk.min_free_bytes();
      {
        MutexLock lock(&figures_mu);
        stats.store = store_figures;
        stats.changes_bytes = changes_bytes;
      }
      g->stats_done(std::move(stats));
      break;
    }
    case Query::Kind::kKpis: {
      KpiReport report;
      {
        MutexLock lock(&g->mu);
        report.kpis = g->kpis;
        report.as_of = g->as_of;
        report.status = g->error;
        report.partitions_reporting = g->reporting;
        report.partitions = std::move(g->partitions);
      }
      std::sort(
          report.partitions.begin(), report.partitions.end(),
          [](const PartitionKpis& a, const PartitionKpis& b) { return a.partition < b.partition; });
      report.partitioned = options.placement == Placement::kKafka;
      report.partitions_total = static_cast<uint32_t>(workers.size());
      g->kpis_done(std::move(report));
      break;
    }
    case Query::Kind::kListTier: {
      TierPage page;
      std::vector<std::pair<std::string, ProfileReport>> members;
      {
        MutexLock lock(&g->mu);
        members = std::move(g->members);
        page.status = g->error;
      }
      // Each shard gave its first limit + 1: the first limit + 1 of the
      // union are among them.
      std::sort(members.begin(), members.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      page.more = members.size() > g->limit;
      if (page.more) members.resize(g->limit);
      for (auto& [id, profile] : members) {
        page.user_ids.push_back(std::move(id));
        if (g->with_profiles) page.profiles.push_back(std::move(profile));
      }
      g->page_done(std::move(page));
      break;
    }
  }
}

// The members of one tier in id order, evicted ones included: the shard is
// checkpointed first, so that its users' persisted tiers are current, and
// then read in key order from the store.
std::vector<std::pair<std::string, ProfileReport>> Pipeline::Impl::ListTierOf(
    Worker* w, state::Tier tier, const std::string& after, size_t limit, bool with_profiles,
    int32_t today, int64_t t, Status* error) {
  std::vector<std::pair<std::string, ProfileReport>> members;
  if (w->state.dirty_count() > 0 ||
      w->cp_phase.load(std::memory_order_acquire) != CheckpointPhase::kIdle) {
    Status s = Checkpoint(w);
    if (!s.ok()) {
      LogAt(LogLevel::kError, "shard %u: checkpoint before tier listing failed: %s", w->id,
            s.ToString().c_str());
      // After a failed part (the committer's, say) no checkpoint will bring
      // the store up to date: the listing would miss what changed.
      if (failed.load(std::memory_order_acquire)) {
        *error = s;
        return members;
      }
    }
  }
  if (with_profiles && today == kNoDay) return members;  // no event yet: no profiles either
  state::UserState user;
  Status s = store->ScanUsers(w->id, after, [&](std::string_view id, std::string_view bytes) {
    if (state::DecodeUserState(bytes, &user).ok() && user.tier == tier) {
      // Made from the stored state, which the checkpoint made current: the
      // listing does not load evicted users back into memory.
      ProfileReport r;
      if (with_profiles) {
        r = ProfileReport{state::MakeProfile(id, user, today, options.config), t, Status::Ok()};
      }
      members.emplace_back(id, std::move(r));
    }
    return members.size() < limit;
  });
  if (!s.ok()) {
    LogAt(LogLevel::kError, "shard %u: tier listing failed: %s", w->id, s.ToString().c_str());
    *error = s;
  }
  return members;
}

}  // namespace tierstream::pipeline
