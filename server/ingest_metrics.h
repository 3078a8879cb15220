// IngestCounters: what the ingest sessions of one source (HTTP bodies, TCP
// connections) count for GET /metrics — lines by outcome, rejected lines by
// the class of their reason, and each batch's ack latency. IngestMetrics
// holds one per source.
//
// Counted once per batch, when the pipeline answers it (a few relaxed
// atomic adds on a worker thread), never per event and without locks.
// The counts are the process's since it started (Prometheus counters).
//
// Ownership: HttpApi owns the server's IngestMetrics; sessions hold a
// pointer, which must outlive their batches (as the pipeline does).
// Thread safety: thread-safe.
#ifndef TIERSTREAM_SERVER_INGEST_METRICS_H_
#define TIERSTREAM_SERVER_INGEST_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/latency_histogram.h"
#include "ingest/decoder.h"
#include "pipeline/batch.h"

namespace tierstream::server {

struct IngestCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> rejected{0};
  // `rejected` by ingest::RejectReason.
  std::array<std::atomic<uint64_t>, ingest::kRejectReasonCount> rejected_by_reason{};
  // Batches the pipeline refused (disk under the watermark, a failed
  // store): the sender was told to re-send them.
  std::atomic<uint64_t> refused_batches{0};
  // From a batch's submission to the pipeline's answer: every accepted
  // event of it durable and applied, its ack or answer free to go (a TCP
  // ack follows within 5 ms; an HTTP answer waits for the body's last
  // batch). Refused batches are not in it.
  LatencyHistogram ack_seconds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                               0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  // Counts one answered batch that waited `latency`.
  void Count(const pipeline::BatchOutcome& outcome, std::chrono::nanoseconds latency) {
    constexpr auto kRelaxed = std::memory_order_relaxed;
    if (outcome.accepted > 0) accepted.fetch_add(outcome.accepted, kRelaxed);
    if (outcome.duplicates > 0) duplicates.fetch_add(outcome.duplicates, kRelaxed);
    if (outcome.rejected > 0) {
      rejected.fetch_add(outcome.rejected, kRelaxed);
      for (size_t i = 0; i < outcome.rejected_by_reason.size(); ++i) {
        if (outcome.rejected_by_reason[i] > 0) {
          rejected_by_reason[i].fetch_add(outcome.rejected_by_reason[i], kRelaxed);
        }
      }
    }
    if (outcome.status.ok()) {
      ack_seconds.Observe(latency);
    } else {
      refused_batches.fetch_add(1, kRelaxed);
    }
  }
};

struct IngestMetrics {
  IngestCounters http;
  IngestCounters tcp;
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_INGEST_METRICS_H_
