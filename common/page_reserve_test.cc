#include "common/page_reserve.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "common/smooth_map.h"

namespace tierstream {
namespace {

// Waits (up to a minute) for the background thread to make the block ready.
bool WaitReady(const PageReserve& reserve) {
  for (int i = 0; i < 6000 && !reserve.ready(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return reserve.ready();
}

TEST(PageReserve, WithoutPreparingItMapsOnTheSpot) {
  PageReserve reserve;
  const size_t bytes = 3 * PageReserve::kLarge + 123;
  auto* p = static_cast<unsigned char*>(reserve.Allocate(bytes));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[bytes - 1], 0);
  std::memset(p, 0xab, bytes);
  EXPECT_EQ(reserve.misses(), 1u);
  EXPECT_EQ(reserve.prepared_hits(), 0u);
  PageReserve::Free(p, bytes);
}

TEST(PageReserve, APreparedBlockIsHandedOutOnceAndZeroed) {
  PageReserve reserve;
  reserve.Prepare(8 * PageReserve::kLarge);
  ASSERT_TRUE(WaitReady(reserve));
  const size_t bytes = 5 * PageReserve::kLarge + 7;  // smaller: the tail goes back
  auto* p = static_cast<unsigned char*>(reserve.Allocate(bytes));
  EXPECT_EQ(reserve.prepared_hits(), 1u);
  EXPECT_FALSE(reserve.ready());
  for (size_t i = 0; i < bytes; i += 4096) ASSERT_EQ(p[i], 0) << i;
  std::memset(p, 0xcd, bytes);
  // The next allocation has nothing prepared.
  auto* q = static_cast<unsigned char*>(reserve.Allocate(bytes));
  EXPECT_EQ(reserve.misses(), 1u);
  EXPECT_NE(p, q);
  PageReserve::Free(p, bytes);
  PageReserve::Free(q, bytes);
}

TEST(PageReserve, ABlockTooSmallIsNotUsedAndALargerOneReplacesIt) {
  PageReserve reserve;
  reserve.Prepare(2 * PageReserve::kLarge);
  ASSERT_TRUE(WaitReady(reserve));
  void* p = reserve.Allocate(4 * PageReserve::kLarge);
  EXPECT_EQ(reserve.misses(), 1u);
  EXPECT_TRUE(reserve.ready());  // still there for a request it fits
  reserve.Prepare(6 * PageReserve::kLarge);
  ASSERT_TRUE(WaitReady(reserve));
  void* q = reserve.Allocate(6 * PageReserve::kLarge);
  EXPECT_EQ(reserve.prepared_hits(), 1u);
  PageReserve::Free(p, 4 * PageReserve::kLarge);
  PageReserve::Free(q, 6 * PageReserve::kLarge);
}

TEST(PageReserve, DestroyedWhileItsBlockIsBeingMade) {
  for (int i = 0; i < 20; ++i) {
    PageReserve reserve;
    reserve.Prepare(16 * PageReserve::kLarge);
  }  // each block is unmapped by its maker (ASan and TSan check this in CI)
}

TEST(PageReserve, SmallAllocationsUseTheHeap) {
  PageReserve reserve;
  ReserveAllocator<uint64_t> alloc(&reserve);
  uint64_t* p = alloc.allocate(100);
  p[99] = 1;
  alloc.deallocate(p, 100);
  EXPECT_EQ(reserve.misses() + reserve.prepared_hits(), 0u);
}

void Put(SmoothMap<uint64_t, uint64_t>* map, uint64_t* k) {
  map->TryEmplace(*k, *k);
  ++*k;
}

// A SmoothMap asks for its next table before it fills, and gets it.
TEST(PageReserve, ASmoothMapGrowsIntoItsPreparedTable) {
  SmoothMap<uint64_t, uint64_t> map;
  uint64_t k = 0;
  // Past the sizes absl grows by itself, to the first prepared table.
  while (!map.next_table_prepared()) Put(&map, &k);
  ASSERT_TRUE(WaitReady(map.reserve()));
  while (!map.growing()) Put(&map, &k);
  EXPECT_EQ(map.reserve().prepared_hits(), 1u);
  while (map.growing()) Put(&map, &k);
  // And again for the next growth.
  while (!map.next_table_prepared()) Put(&map, &k);
  ASSERT_TRUE(WaitReady(map.reserve()));
  while (!map.growing()) Put(&map, &k);
  EXPECT_EQ(map.reserve().prepared_hits(), 2u);
  for (uint64_t i = 0; i < k; ++i) ASSERT_EQ(*map.Find(i), i) << i;
}

}  // namespace
}  // namespace tierstream
