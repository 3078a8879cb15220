#include "common/latency_histogram.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace tierstream {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(LatencyHistogram, ABoundIsInclusiveAndTheLastBucketTakesTheRest) {
  LatencyHistogram h({0.001, 0.01});
  h.Observe(microseconds(500));
  h.Observe(milliseconds(1));  // on the bound: le="0.001"
  h.Observe(milliseconds(5));
  h.Observe(std::chrono::seconds(3));
  h.Observe(milliseconds(-1));  // a clock that stepped back counts as 0
  const HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.bounds_seconds, (std::vector<double>{0.001, 0.01}));
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{3, 1, 1}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 0.0005 + 0.001 + 0.005 + 3);
}

TEST(LatencyHistogram, ConcurrentObservationsAreAllCounted) {
  LatencyHistogram h({0.001});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.Observe(microseconds(i % 2 == 0 ? 1 : 2000));
    });
  }
  for (auto& t : threads) t.join();
  const HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{20000, 20000}));
  EXPECT_EQ(s.count, 40000u);
}

}  // namespace
}  // namespace tierstream
