// GET /metrics: the Prometheus text exposition (format 0.0.4) of the
// server's figures, rendered from the values one scrape gathers (one
// GetStats and one GetKpis of the pipeline, the ingest counters, the
// recovery figures). Every metric is listed with its meaning in README
// "Metrics"; names follow Prometheus' conventions (tierstream_ prefix,
// _total counters, seconds and bytes; money in integer fen, as the
// pipeline keeps it, with a _fen suffix).
//
// prometheus-cpp's core library writes the format (its TextSerializer over
// plain MetricFamily values: no registry, no global state); its types stay
// in metrics.cc.
//
// Thread safety: thread-safe (pure function).
#ifndef TIERSTREAM_SERVER_METRICS_H_
#define TIERSTREAM_SERVER_METRICS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/input_stats.h"
#include "pipeline/pipeline.h"
#include "pipeline/queries.h"
#include "server/ingest_metrics.h"

namespace tierstream::server {

// What Prometheus servers expect of this format.
inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The hook for the webhook dispatcher's figures (not built yet): one entry
// per configured webhook, rendered as tierstream_webhook_lag_changes,
// tierstream_webhook_lag_seconds, tierstream_webhook_deliveries_total and
// tierstream_webhook_failures_total, labelled webhook="<name>". While the
// list is empty (no dispatcher), none of these is exposed. A dispatcher
// fills it through HttpApi::SetWebhookFigures.
struct WebhookFigures {
  std::string name;          // the label: the webhook's configured name (few, fixed)
  uint64_t lag_changes = 0;  // changes in the feed not yet delivered to it
  double lag_seconds = 0;    // age of the oldest change not yet delivered (0: none)
  uint64_t deliveries = 0;   // deliveries answered 2xx since the process started
  uint64_t failures = 0;     // deliveries that failed (error, timeout, non-2xx)
};

struct MetricsInput {
  const IngestMetrics* ingest = nullptr;  // null: no ingest figures
  pipeline::PipelineStats stats;
  pipeline::KpiReport kpis;  // as_of is T (kNoTs before the first event)
  pipeline::RecoveryStats recovery;
  bool ready = false;        // ingest is taken now (no refusal)
  bool change_log = false;   // the change feed is on
  uint64_t changes_end = 0;  // its newest durable cursor
  std::vector<WebhookFigures> webhooks;
  std::optional<pipeline::InputStats> input;  // the Kafka mode's consumer
};

// The exposition, "# HELP" and "# TYPE" lines included.
std::string RenderMetrics(const MetricsInput& in);

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_METRICS_H_
