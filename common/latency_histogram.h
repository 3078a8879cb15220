// LatencyHistogram: how many durations fell into each of a few fixed
// buckets, with their count and sum, for GET /metrics. Observe() is three
// relaxed atomic adds and a scan of at most kMaxBuckets bounds — cheap
// enough to record once per batch on the ingest path, and lock-free.
// Snapshot() copies it for a scrape.
//
// A snapshot is not taken as of one moment: an observation racing with it
// may be in its bucket but not yet in its sum. Its count is the sum of its
// buckets, so the two always agree (Prometheus requires that of _count and
// the +Inf bucket).
//
// Thread safety: thread-safe.
#ifndef TIERSTREAM_COMMON_LATENCY_HISTOGRAM_H_
#define TIERSTREAM_COMMON_LATENCY_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace tierstream {

// What a scrape reads: per-bucket counts (not cumulative), the last one
// past every bound (+Inf).
struct HistogramSnapshot {
  std::vector<double> bounds_seconds;  // ascending upper bounds
  std::vector<uint64_t> counts;        // bounds_seconds.size() + 1 buckets
  double sum_seconds = 0;
  uint64_t count = 0;
};

class LatencyHistogram {
 public:
  static constexpr size_t kMaxBuckets = 24;

  // `bounds_seconds`: ascending upper bounds, at most kMaxBuckets - 1 of
  // them; a last bucket takes what lies above every bound.
  explicit LatencyHistogram(std::initializer_list<double> bounds_seconds)
      : bounds_(bounds_seconds) {
    if (bounds_.size() >= kMaxBuckets) bounds_.resize(kMaxBuckets - 1);
    for (double b : bounds_) bounds_ns_.push_back(std::llround(b * 1e9));
  }
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  void Observe(std::chrono::nanoseconds d) {
    const int64_t ns = std::max<int64_t>(d.count(), 0);
    size_t i = 0;
    while (i < bounds_ns_.size() && ns > bounds_ns_[i]) ++i;  // le: a bound is inclusive
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  }

  HistogramSnapshot Snapshot() const {
    HistogramSnapshot s;
    s.bounds_seconds = bounds_;
    s.counts.resize(bounds_.size() + 1);
    for (size_t i = 0; i < s.counts.size(); ++i) {
      s.counts[i] = buckets_[i].load(std::memory_order_relaxed);
      s.count += s.counts[i];
    }
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> bounds_ns_;
  std::array<std::atomic<uint64_t>, kMaxBuckets> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_LATENCY_HISTOGRAM_H_
