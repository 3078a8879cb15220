#include "common/chunked_vector.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace tierstream {
namespace {

// Small chunks, so that every operation crosses chunk boundaries; checked
// against std::vector after each step.
TEST(ChunkedVector, AgreesWithAVectorAcrossChunks) {
  ChunkedVector<uint64_t, 3> v;  // 8 per chunk
  std::vector<uint64_t> oracle;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20'000; ++i) {
    switch (rng() % 10) {
      case 0:
        if (!oracle.empty()) {
          v.pop_back();
          oracle.pop_back();
        }
        break;
      case 1: {
        const size_t n = oracle.empty() ? 0 : rng() % (oracle.size() + 2);
        v.Truncate(n);
        if (n < oracle.size()) oracle.resize(n);
        break;
      }
      case 2: {
        const uint64_t m = rng() % 5 + 2;
        v.EraseIf([&](uint64_t x) { return x % m == 0; });
        std::erase_if(oracle, [&](uint64_t x) { return x % m == 0; });
        break;
      }
      default: {
        const uint64_t x = rng() % 1000;
        v.push_back(x);
        oracle.push_back(x);
      }
    }
    ASSERT_EQ(v.size(), oracle.size()) << i;
    ASSERT_EQ(v.empty(), oracle.empty()) << i;
    if (!oracle.empty()) {
      ASSERT_EQ(v.back(), oracle.back()) << i;
    }
  }
  std::vector<uint64_t> got;
  for (uint64_t x : v) got.push_back(x);
  EXPECT_EQ(got, oracle);
}

TEST(ChunkedVector, AMovedFromVectorIsEmptyAndElementsDoNotMove) {
  ChunkedVector<std::pair<int, int>, 2> v;
  for (int i = 0; i < 10; ++i) v.emplace_back(i, -i);
  const std::pair<int, int>* fifth = &v[5];
  ChunkedVector<std::pair<int, int>, 2> w = std::move(v);
  EXPECT_TRUE(v.empty());  // NOLINT(bugprone-use-after-move): it is specified
  EXPECT_EQ(&w[5], fifth);
  EXPECT_EQ(w[9], std::make_pair(9, -9));
  v.push_back({1, 2});
  EXPECT_EQ(v.size(), 1u);
  w.clear();
  EXPECT_TRUE(w.empty());
}

}  // namespace
}  // namespace tierstream
