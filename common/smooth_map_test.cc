#include "common/smooth_map.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <unordered_map>

namespace tierstream {
namespace {

// Random inserts, erases and lookups across several growths (by entries
// and by tombstones), checked
// against std::unordered_map after every step.
TEST(SmoothMap, AgreesWithAPlainMapWhileItGrows) {
  SmoothMap<uint64_t, uint32_t> map;
  std::unordered_map<uint64_t, uint32_t> oracle;
  std::mt19937_64 rng(7);
  int growths = 0;
  bool was_growing = false;
  for (uint32_t i = 0; i < 600'000; ++i) {
    const uint64_t k = rng() % 1'000'000;
    switch (rng() % 8) {
      case 0: {  // erase
        const bool had = oracle.erase(k) > 0;
        ASSERT_EQ(map.Erase(k), had) << i;
        break;
      }
      case 1: {  // lookup
        auto o = oracle.find(k);
        const uint32_t* v = map.Find(k);
        ASSERT_EQ(v != nullptr, o != oracle.end()) << i;
        if (v != nullptr) {
          ASSERT_EQ(*v, o->second) << i;
        }
        break;
      }
      default: {  // insert
        auto [v, fresh] = map.TryEmplace(k, i);
        auto [o, oracle_fresh] = oracle.try_emplace(k, i);
        ASSERT_EQ(fresh, oracle_fresh) << i;
        ASSERT_EQ(*v, o->second) << i;
      }
    }
    ASSERT_EQ(map.size(), oracle.size()) << i;
    if (map.growing() && !was_growing) ++growths;
    was_growing = map.growing();
  }
  EXPECT_GE(growths, 2);  // 65k -> 131k -> 262k -> ...
  size_t seen = 0;
  map.ForEach([&](uint64_t k, uint32_t v) {
    auto o = oracle.find(k);
    ASSERT_NE(o, oracle.end());
    EXPECT_EQ(v, o->second);
    ++seen;
  });
  EXPECT_EQ(seen, oracle.size());
}

TEST(SmoothMap, AMoveWhileGrowingKeepsEveryEntry) {
  SmoothMap<uint64_t, uint32_t> map;
  uint64_t k = 0;
  while (!map.growing()) map.TryEmplace(k++, 1);
  for (int i = 0; i < 1000; ++i) map.TryEmplace(k++, 1);
  ASSERT_TRUE(map.growing());
  SmoothMap<uint64_t, uint32_t> moved(std::move(map));
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(moved.size(), k);
  for (uint64_t i = 0; i < k; ++i) ASSERT_NE(moved.Find(i), nullptr) << i;
  // It goes on growing from where it was.
  while (moved.growing()) moved.TryEmplace(k++, 2);
  EXPECT_EQ(moved.size(), k);
  for (uint64_t i = 0; i < k; ++i) ASSERT_NE(moved.Find(i), nullptr) << i;
}

}  // namespace
}  // namespace tierstream
