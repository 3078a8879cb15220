#include "state/seen_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "state/dedup_index.h"

namespace tierstream::state {
namespace {

template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

const Hash128 kA{0x0123456789abcdef, 0xfedcba9876543210};
const Hash128 kB{1, 2};
const Hash128 kC{0xffffffffffffffff, 0};
constexpr int32_t kDay = 19675;  // 2023-11-14
constexpr int64_t kWall = 1'700'000'000'000;

// Seen blobs are in existing data dirs: these bytes must never change.
const std::string kGoldenDay = Bytes(
    "\x01\x00\x68\xe5\xcf\x8b\x01\x00\x00"                              // v1, wall 1700000000000
    "\xef\xcd\xab\x89\x67\x45\x23\x01\x10\x32\x54\x76\x98\xba\xdc\xfe"  // kA
    "\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"  // kC
);
const std::string kGoldenNextDay = Bytes(
    "\x01\x40\x4a\xe7\xcf\x8b\x01\x00\x00"                              // v1, wall 1700000123456
    "\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00"  // kB
);

ChunkedVector<NewSeenIds::Entry> Ids(std::initializer_list<NewSeenIds::Entry> entries) {
  ChunkedVector<NewSeenIds::Entry> ids;
  for (const auto& e : entries) ids.push_back(e);
  return ids;
}

TEST(SeenCodec, EncodesKnownIdsToTheGoldenBytes) {
  // kDay has its newest id's wall clock; kDay + 1 has none and gets the default.
  NewSeenIds ids(Ids({{kA, kDay}, {kB, kDay + 1}, {kC, kDay}}), {{kDay, kWall}, {kDay - 3, 5}},
                 kWall + 123'456);
  const std::vector<SeenDayBlob> blobs = ids.EncodeByDay();
  ASSERT_EQ(blobs.size(), 2u);
  EXPECT_EQ(blobs[0].day, kDay);
  EXPECT_EQ(blobs[0].blob, kGoldenDay);
  EXPECT_EQ(blobs[1].day, kDay + 1);
  EXPECT_EQ(blobs[1].blob, kGoldenNextDay);
  // The same bytes, written by hand.
  std::string by_hand;
  BeginSeenBlob(kWall, &by_hand);
  AppendSeenId(kA, &by_hand);
  AppendSeenId(kC, &by_hand);
  EXPECT_EQ(by_hand, kGoldenDay);
}

TEST(SeenCodec, ReadsTheGoldenBytesAndBareBlobs) {
  Result<SeenBlobView> v1 = SeenBlobView::Parse(kGoldenDay);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->wall_ms(), kWall);
  ASSERT_EQ(v1->size(), 2u);
  EXPECT_EQ(v1->id(0), kA);
  EXPECT_EQ(v1->id(1), kC);
  // Version 0 (before wall-clock horizons): bare hashes.
  const std::string bare = kGoldenNextDay.substr(9);
  Result<SeenBlobView> v0 = SeenBlobView::Parse(bare);
  ASSERT_TRUE(v0.ok());
  EXPECT_FALSE(v0->wall_ms().has_value());
  ASSERT_EQ(v0->size(), 1u);
  EXPECT_EQ(v0->id(0), kB);
  EXPECT_TRUE(SeenBlobView::Parse("").ok());
  EXPECT_EQ(SeenBlobView::Parse(bare + "x").status().ToString(), "seen ids: bad length");
  // A 9-byte remainder without the version byte is no header.
  std::string wrong_version = kGoldenDay;
  wrong_version[0] = 2;
  EXPECT_FALSE(SeenBlobView::Parse(wrong_version).ok());
}

TEST(SeenCodec, AnIndexLoadsTheGoldenBytes) {
  DedupIndex index(0, 8, nullptr);
  index.SetWallClock(kWall + 1000);
  ASSERT_TRUE(index.LoadSeen(kDay, kGoldenDay).ok());
  ASSERT_TRUE(index.LoadSeen(kDay + 1, kGoldenNextDay.substr(9)).ok());
  EXPECT_EQ(index.count(), 3u);
  const int64_t ts = int64_t{kDay} * kMsPerDay;
  EXPECT_FALSE(index.MarkSeenHash(kA, ts, kDay, ts));
  EXPECT_FALSE(index.MarkSeenHash(kB, ts, kDay, ts));
  EXPECT_FALSE(index.MarkSeenHash(kC, ts, kDay, ts));
  EXPECT_EQ(index.BucketWalls(),
            (std::vector<std::pair<int32_t, int64_t>>{{kDay, kWall}, {kDay + 1, kWall + 1000}}));
}

// The committer's grouping before the codec had it (pipeline.cc): one blob
// per day, headed by the day's bucket wall clock or else the snapshot's.
std::vector<SeenDayBlob> EncodeAsThePipelineDid(
    const ChunkedVector<std::pair<Hash128, int32_t>>& ids,
    const std::vector<std::pair<int32_t, int64_t>>& bucket_walls, int64_t cp_wall_ms) {
  absl::flat_hash_map<int32_t, std::string> by_day;
  for (const auto& [h, day] : ids) {
    std::string& blob = by_day[day];
    if (blob.empty()) {
      int64_t wall = cp_wall_ms;
      for (const auto& [d, ms] : bucket_walls) {
        if (d == day) wall = ms;
      }
      BeginSeenBlob(wall, &blob);
    }
    AppendSeenId(h, &blob);
  }
  std::vector<SeenDayBlob> blobs;
  for (auto& [day, blob] : by_day) blobs.push_back({day, std::move(blob)});
  std::sort(blobs.begin(), blobs.end(), [](const auto& a, const auto& b) { return a.day < b.day; });
  return blobs;
}

void Feed(DedupIndex* index) {
  index->SetWallClock(kWall);
  const int64_t ts = int64_t{kDay} * kMsPerDay;
  for (int i = 0; i < 300; ++i) {
    // Three days, interleaved; the wall clock moves on.
    index->SetWallClock(kWall + i * 1000);
    const int64_t event_ts = ts + (i % 3) * kMsPerDay;
    ASSERT_TRUE(index->MarkSeenHash(HashId128("id" + std::to_string(i), 0), event_ts, kDay, ts));
  }
  // One id is unmarked (a failed log write) and one re-marked.
  index->Unmark(HashId128("id7", 0));
  ASSERT_TRUE(index->MarkSeenHash(HashId128("id7", 0), ts, kDay, ts));
}

TEST(SeenCodec, TakenIdsEncodeToTheBytesTheCommitterWrote) {
  DedupIndex index(0, 8, nullptr);
  Feed(&index);
  // What the committer read before it encoded NewSeenIds: the walls and the
  // wall clock at the snapshot.
  const std::vector<std::pair<int32_t, int64_t>> walls = index.BucketWalls();
  const int64_t wall_clock = index.wall_clock();
  NewSeenIds taken = index.TakeNewSeen();
  EXPECT_EQ(taken.size(), 301u);
  const std::vector<SeenDayBlob> want = EncodeAsThePipelineDid(taken.ids(), walls, wall_clock);
  const std::vector<SeenDayBlob> got = taken.EncodeByDay();
  ASSERT_EQ(got.size(), 3u);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].day, want[i].day);
    EXPECT_EQ(got[i].blob, want[i].blob) << got[i].day;
  }
  index.CheckpointDone(true, std::move(taken));
}

TEST(SeenCodec, AFailedCheckpointGivesItsIdsBack) {
  DedupIndex index(0, 8, nullptr);
  Feed(&index);
  NewSeenIds taken = index.TakeNewSeen();
  const size_t n = taken.size();
  ASSERT_EQ(n, 301u);
  EXPECT_EQ(index.NewSeenMark(), 0u);
  const int64_t ts = int64_t{kDay} * kMsPerDay;
  ASSERT_TRUE(index.MarkSeenHash(HashId128("meanwhile", 0), ts, kDay, ts));
  index.CheckpointDone(false, std::move(taken));
  NewSeenIds again = index.TakeNewSeen();
  EXPECT_EQ(again.size(), n + 1);
  index.CheckpointDone(true, std::move(again));
  EXPECT_TRUE(index.TakeNewSeen().empty());
}

}  // namespace
}  // namespace tierstream::state
