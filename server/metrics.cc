// Renders GET /metrics in the Prometheus text format (prometheus-cpp's
// serializer over plain metric families).
#include "server/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <deque>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/time.h"
#include "state/user_state.h"

namespace tierstream::server {

namespace {

namespace pc = prometheus;
using Labels = std::vector<pc::ClientMetric::Label>;

double D(uint64_t v) { return static_cast<double>(v); }
double D(int64_t v) { return static_cast<double>(v); }

// The families of one scrape, in the order they are added.
class Families {
 public:
  pc::MetricFamily& Counter(const char* name, const char* help) {
    return Add(name, help, pc::MetricType::Counter);
  }
  pc::MetricFamily& Gauge(const char* name, const char* help) {
    return Add(name, help, pc::MetricType::Gauge);
  }
  pc::MetricFamily& Histogram(const char* name, const char* help) {
    return Add(name, help, pc::MetricType::Histogram);
  }
  // A family of one sample without labels.
  void Counter(const char* name, const char* help, double value) {
    Sample(Counter(name, help), value);
  }
  void Gauge(const char* name, const char* help, double value) { Sample(Gauge(name, help), value); }

  static void Sample(pc::MetricFamily& family, double value, Labels labels = {}) {
    pc::ClientMetric m;
    m.label = std::move(labels);
    if (family.type == pc::MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    family.metric.push_back(std::move(m));
  }
  static void Sample(pc::MetricFamily& family, const HistogramSnapshot& h, Labels labels = {}) {
    pc::ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = h.count;
    m.histogram.sample_sum = h.sum_seconds;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      const double bound = i < h.bounds_seconds.size() ? h.bounds_seconds[i]
                                                       : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back({cumulative, bound});
    }
    family.metric.push_back(std::move(m));
  }

  std::string Render() {
    std::vector<pc::MetricFamily> all(std::make_move_iterator(families_.begin()),
                                      std::make_move_iterator(families_.end()));
    return pc::TextSerializer().Serialize(all);
  }

 private:
  pc::MetricFamily& Add(const char* name, const char* help, pc::MetricType type) {
    families_.push_back(pc::MetricFamily{name, help, type, {}});
    return families_.back();
  }
  // A deque: the families being filled keep their addresses.
  std::deque<pc::MetricFamily> families_;
};

void AddIngest(const IngestMetrics& m, Families* f) {
  const std::pair<const char*, const IngestCounters*> sources[] = {{"http", &m.http},
                                                                   {"tcp", &m.tcp}};
  auto& events = f->Counter("tierstream_ingest_events_total",
                            "Lines taken by ingest since the process started, by source and "
                            "outcome (accepted, duplicate, rejected), counted when their batch "
                            "was answered.");
  for (const auto& [source, c] : sources) {
    for (const auto& [outcome, n] :
         {std::pair{"accepted", c->accepted.load()}, std::pair{"duplicate", c->duplicates.load()},
          std::pair{"rejected", c->rejected.load()}}) {
      Families::Sample(events, D(n), {{"source", source}, {"outcome", outcome}});
    }
  }
  auto& rejections = f->Counter("tierstream_ingest_rejections_total",
                                "Rejected lines by source and class of reason; they sum to "
                                "tierstream_ingest_events_total{outcome=\"rejected\"}.");
  for (const auto& [source, c] : sources) {
    for (size_t i = 0; i < ingest::kRejectReasonCount; ++i) {
      Families::Sample(
          rejections, D(c->rejected_by_reason[i].load()),
          {{"source", source},
           {"reason", ingest::RejectReasonName(static_cast<ingest::RejectReason>(i))}});
    }
  }
  auto& refused = f->Counter("tierstream_ingest_refused_batches_total",
                             "Batches refused (disk under the watermark, a failed store): their "
                             "senders got 503 or an error summary and re-send them.");
  for (const auto& [source, c] : sources) {
    Families::Sample(refused, D(c->refused_batches.load()), {{"source", source}});
  }
  auto& ack = f->Histogram("tierstream_ingest_ack_latency_seconds",
                           "From a batch's submission to the pipeline's answer (every accepted "
                           "event of it durable and applied), by source.");
  for (const auto& [source, c] : sources) {
    Families::Sample(ack, c->ack_seconds.Snapshot(), {{"source", source}});
  }
}

void AddPipeline(const MetricsInput& in, Families* f) {
  const pipeline::PipelineStats& s = in.stats;
  f->Gauge("tierstream_ready", "1 while ingest is taken; 0 while it is refused (see /readyz).",
           in.ready ? 1 : 0);
  f->Gauge("tierstream_shards", "Shard workers.", D(s.shards));
  f->Gauge("tierstream_events_in_flight",
           "Events submitted to the shards and not yet answered (the backpressure bound "
           "applies to it).",
           D(s.events_in_flight));
  if (in.kpis.as_of != kNoTs) {
    f->Gauge("tierstream_watermark_timestamp_seconds",
             "T, the largest accepted event time, in seconds since the epoch.",
             static_cast<double>(in.kpis.as_of) / 1000.0);
  }

  f->Gauge("tierstream_resident_users", "Users decoded in memory.", D(s.resident_users));
  f->Gauge("tierstream_resident_users_limit",
           "The bound on users decoded in memory (--max-resident-users).", D(s.max_resident_users));
  f->Gauge("tierstream_warm_users", "Evicted users kept encoded in memory (the warm tier).",
           D(s.warm_users));
  f->Gauge("tierstream_warm_bytes", "Memory of the warm tier.", D(s.warm_bytes));
  f->Gauge("tierstream_dirty_users", "Users changed since their last checkpoint.",
           D(s.dirty_users));
  auto& reloads = f->Counter("tierstream_user_reloads_total",
                             "Evicted users brought back, from the warm tier or the store.");
  Families::Sample(reloads, D(s.warm_reloads), {{"from", "warm"}});
  Families::Sample(reloads, D(s.reloads - std::min(s.reloads, s.warm_reloads)),
                   {{"from", "store"}});

  f->Gauge("tierstream_dedup_remembered_ids",
           "Event ids of the duplicate index held exactly in memory.", D(s.remembered_ids));
  f->Gauge("tierstream_dedup_spilled_ids",
           "Event ids of the duplicate index in sorted runs on disk.", D(s.spilled_ids));
  f->Gauge("tierstream_dedup_id_runs", "Live spilled runs of event ids.", D(s.id_runs));
  f->Counter("tierstream_events_beyond_horizon_total",
             "Events accepted though older than the duplicate horizon (their originals, if "
             "any, may have been forgotten).",
             D(s.events_beyond_horizon));

  auto& cp = f->Histogram("tierstream_checkpoint_duration_seconds",
                          "Committed checkpoints since the process started, from the start of "
                          "a shard's snapshot to its commit.");
  Families::Sample(cp, s.checkpoint_seconds);
  f->Counter("tierstream_checkpoint_failures_total",
             "Checkpoints whose commit failed (retried; the log is kept).",
             D(s.checkpoint_failures));
  f->Gauge("tierstream_checkpoint_last_bytes",
           "Size of the latest committed checkpoint's write batch.", D(s.last_checkpoint_bytes));

  f->Gauge("tierstream_recovery_duration_seconds",
           "How long the recovery at startup took (loading checkpoints, replaying the log).",
           in.recovery.seconds);
  f->Gauge("tierstream_recovery_loaded_users", "Users loaded by the recovery at startup.",
           D(in.recovery.users_loaded));
  f->Gauge("tierstream_recovery_replayed_events",
           "Logged events replayed by the recovery at startup.",
           D(in.recovery.log_events_replayed));
}

void AddStore(const MetricsInput& in, Families* f) {
  const state::StoreFigures& st = in.stats.store;
  const std::pair<const char*, const state::DbFigures*> dbs[] = {{"journal", &st.journal},
                                                                 {"state", &st.state}};
  auto per_db = [&](pc::MetricFamily& family, uint64_t state::DbFigures::*field) {
    for (const auto& [db, figures] : dbs)
      Families::Sample(family, D(figures->*field), {{"db", db}});
  };
  per_db(f->Gauge("tierstream_rocksdb_memtable_bytes",
                  "RocksDB memtables (active and immutable), by database."),
         &state::DbFigures::memtable_bytes);
  per_db(f->Gauge("tierstream_rocksdb_pending_compaction_bytes",
                  "RocksDB's estimate of the bytes compaction must rewrite, by database."),
         &state::DbFigures::pending_compaction_bytes);
  per_db(f->Gauge("tierstream_rocksdb_live_sst_bytes",
                  "RocksDB table files of the current version, by database."),
         &state::DbFigures::live_sst_bytes);
  auto& stall_time =
      f->Counter("tierstream_rocksdb_write_stall_seconds_total",
                 "Time RocksDB held writers back (delayed or stopped) since the database was "
                 "opened, by database.");
  for (const auto& [db, figures] : dbs) {
    Families::Sample(stall_time, static_cast<double>(figures->write_stall_micros) / 1e6,
                     {{"db", db}});
  }
  auto& stalls = f->Counter("tierstream_rocksdb_write_stalls_total",
                            "RocksDB write stalls since the database was opened, by database "
                            "and kind (slowdown: writes delayed; stop: writes stopped).");
  for (const auto& [db, figures] : dbs) {
    Families::Sample(stalls, D(figures->write_slowdowns), {{"db", db}, {"kind", "slowdown"}});
    Families::Sample(stalls, D(figures->write_stops), {{"db", db}, {"kind", "stop"}});
  }
  f->Gauge("tierstream_disk_free_bytes", "Free space of the data dir's file system.",
           D(in.stats.disk_free_bytes));
  f->Gauge("tierstream_disk_min_free_bytes",
           "The free space under which ingest is refused (--min-free-mb).",
           D(in.stats.min_free_bytes));
  if (in.change_log) {
    f->Gauge("tierstream_changes_bytes", "The change feed's size on disk and in memtables.",
             D(in.stats.changes_bytes));
    f->Gauge("tierstream_changes_end_cursor",
             "The cursor of the newest durable tier change (/v1/changes?after=end).",
             D(in.changes_end));
  }
}

void AddKpis(const MetricsInput& in, Families* f) {
  const state::KpiPartial& k = in.kpis.kpis;
  f->Gauge("tierstream_users", "Users with a profile (the KPIs' users_total).", D(k.users_total));
  f->Gauge("tierstream_members", "Users who are members.", D(k.members));
  auto& tiers = f->Gauge("tierstream_tier_users", "Users per tier, as of T.");
  for (int i = 0; i < state::kTierCount; ++i) {
    Families::Sample(tiers, D(k.tiers[static_cast<size_t>(i)]),
                     {{"tier", std::string(state::TierName(static_cast<state::Tier>(i)))}});
  }
  f->Gauge("tierstream_monthly_active_members",
           "Members with an interaction or order in the last 30 days (mau).", D(k.mau));
  f->Gauge("tierstream_daily_active_members",
           "Members with an interaction or order on T's day (dau).", D(k.dau));
  f->Gauge("tierstream_orders_30d", "Orders in the last 30 days.", D(k.orders_30d));
  f->Gauge("tierstream_gmv_30d_fen",
           "Order amounts in the last 30 days, in fen (yuan x 100, exact).", D(k.gmv_30d_fen));
  f->Gauge("tierstream_refunds_30d_fen", "Refund amounts in the last 30 days, in fen.",
           D(k.refunds_30d_fen));
}

void AddWebhooks(const std::vector<WebhookFigures>& webhooks, Families* f) {
  if (webhooks.empty()) return;
  auto& lag = f->Gauge("tierstream_webhook_lag_changes",
                       "Changes in the feed not yet delivered, by webhook.");
  auto& age = f->Gauge("tierstream_webhook_lag_seconds",
                       "Age of the oldest change not yet delivered, by webhook.");
  auto& delivered =
      f->Counter("tierstream_webhook_deliveries_total", "Deliveries answered 2xx, by webhook.");
  auto& failed = f->Counter("tierstream_webhook_failures_total",
                            "Deliveries that failed (error, timeout, non-2xx), by webhook.");
  for (const WebhookFigures& w : webhooks) {
    Families::Sample(lag, D(w.lag_changes), {{"webhook", w.name}});
    Families::Sample(age, w.lag_seconds, {{"webhook", w.name}});
    Families::Sample(delivered, D(w.deliveries), {{"webhook", w.name}});
    Families::Sample(failed, D(w.failures), {{"webhook", w.name}});
  }
}

void AddInput(const pipeline::InputStats& k, Families* f) {
  f->Gauge("tierstream_kafka_assigned_partitions",
           "Partitions of the input topic this instance consumes.", D(k.assigned.size()));
  auto& position = f->Gauge("tierstream_kafka_offset",
                            "The next offset its shard reads, by assigned partition.");
  auto& lag = f->Gauge("tierstream_kafka_lag",
                       "Records of the partition not yet in its shard's state (as of the last "
                       "fetch), by assigned partition.");
  for (const pipeline::InputPartitionStats& p : k.assigned) {
    const std::string label = std::to_string(p.partition);
    Families::Sample(position, D(p.position), {{"partition", label}});
    if (p.lag >= 0) Families::Sample(lag, static_cast<double>(p.lag), {{"partition", label}});
  }
  f->Counter("tierstream_kafka_records_total", "Input records read.", D(k.records));
  f->Counter("tierstream_kafka_forwards_received_total",
             "Forwards read: other partitions' events for this instance's users.",
             D(k.forwarded_in));
  f->Counter("tierstream_kafka_forwarded_events_total",
             "Events (and referral credits) forwarded to the partitions of their users.",
             D(k.forwarded_out));
  f->Counter("tierstream_kafka_rewinds_total", "Partitions read again after a failed batch.",
             D(k.rewinds));
  f->Counter("tierstream_kafka_rebalances_total", "Assignments and revocations of partitions.",
             D(k.rebalances));
  f->Counter("tierstream_kafka_restores_total", "Partitions restored from the changelog.",
             D(k.restores));
  f->Counter("tierstream_kafka_restored_bytes_total", "Bytes of shard images applied by restores.",
             D(k.restored_bytes));
  f->Counter("tierstream_kafka_restore_seconds_total", "Time restores took.", k.restore_seconds);
  f->Counter("tierstream_kafka_changes_published_total",
             "Tier changes produced to the change topic (again ones after a takeover too).",
             D(k.changes_published));
  f->Counter("tierstream_kafka_changes_fenced_total",
             "Checkpoints whose changes were not published: another member had claimed the "
             "partition.",
             D(k.changes_fenced));
}

}  // namespace

std::string RenderMetrics(const MetricsInput& in) {
  Families f;
  if (in.ingest != nullptr) AddIngest(*in.ingest, &f);
  AddPipeline(in, &f);
  AddStore(in, &f);
  AddKpis(in, &f);
  AddWebhooks(in.webhooks, &f);
  if (in.input) AddInput(*in.input, &f);
  return f.Render();
}

}  // namespace tierstream::server
