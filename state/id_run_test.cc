#include "state/id_run.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <string_view>

#include "common/varint.h"

namespace tierstream::state {
namespace {

struct Built {
  IdRun run;
  std::map<uint32_t, std::string> blocks;
};

Built BuildRun(std::vector<std::pair<Hash128, int32_t>> entries) {
  Built b;
  b.run = IdRun::Build(7, &entries, [&](uint32_t block, std::string_view bytes) {
    b.blocks[block] = std::string(bytes);
  });
  return b;
}

bool Lookup(const Built& b, const Hash128& h, int32_t* day) {
  if (!b.run.MayContain(h)) return false;
  bool found = false;
  EXPECT_TRUE(IdRun::FindInBlock(b.blocks.at(b.run.BlockOf(h)), h, &found, day).ok());
  return found;
}

TEST(IdRun, FindsEveryIdWithItsDayAndFewFalsePositives) {
  std::mt19937_64 rng(1);
  std::vector<std::pair<Hash128, int32_t>> entries;
  for (int i = 0; i < 100000; ++i) entries.push_back({{rng(), rng()}, 20000 + i % 9});
  const auto original = entries;
  Built b = BuildRun(entries);
  EXPECT_EQ(b.run.count(), 100000u);
  EXPECT_EQ(b.run.max_day(), 20008);
  EXPECT_EQ(b.blocks.size(), (100000 + kIdRunBlockEntries - 1) / kIdRunBlockEntries);
  for (const auto& [h, want] : original) {
    int32_t day = 0;
    ASSERT_TRUE(Lookup(b, h, &day));
    EXPECT_EQ(day, want);
  }
  int passed_filter = 0;
  for (int i = 0; i < 100000; ++i) {
    Hash128 absent{rng(), rng()};
    passed_filter += b.run.MayContain(absent);
    int32_t day;
    EXPECT_FALSE(Lookup(b, absent, &day));
  }
  EXPECT_LT(passed_filter, 1500);  // ~0.5% expected at 12 bits per id
}

TEST(IdRun, DescriptorRoundTrips) {
  std::mt19937_64 rng(2);
  std::vector<std::pair<Hash128, int32_t>> entries;
  for (int i = 0; i < 3000; ++i) entries.push_back({{rng(), rng()}, -5 + i % 3});
  const auto original = entries;
  Built b = BuildRun(entries);
  std::string bytes;
  b.run.EncodeDescriptor(&bytes);
  Built copy;
  ASSERT_TRUE(IdRun::DecodeDescriptor(bytes, &copy.run).ok());
  copy.blocks = b.blocks;
  EXPECT_EQ(copy.run.run_no(), 7u);
  EXPECT_EQ(copy.run.max_day(), -3);
  EXPECT_EQ(copy.run.count(), 3000u);
  for (const auto& [h, want] : original) {
    int32_t day = 0;
    ASSERT_TRUE(Lookup(copy, h, &day));
    EXPECT_EQ(day, want);
  }
}

TEST(IdRun, RejectsDamagedBytes) {
  std::vector<std::pair<Hash128, int32_t>> entries = {{{1, 2}, 3}};
  Built b = BuildRun(entries);
  std::string bytes;
  b.run.EncodeDescriptor(&bytes);
  IdRun out;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(IdRun::DecodeDescriptor(std::string_view(bytes).substr(0, cut), &out).ok());
  }
  bool found;
  int32_t day;
  EXPECT_FALSE(IdRun::FindInBlock("short", {1, 2}, &found, &day).ok());
}

// Regression: a filter or fence count whose size in bytes wraps around 2^64
// passed the length check, and the decoder resized a vector to it (an
// uncaught std::length_error: recovery aborted). The inputs are in
// fuzz/corpus/id_run/wrap_{words,fences}.bin.
TEST(IdRun, RejectsSizesThatWrapAround) {
  std::string words;  // version 2, run 1, day 19675, wall 0, 1 id, 2^61 filter words
  PutVarint64(&words, 2);
  PutVarint64(&words, 1);
  PutVarintSigned(&words, 19675);
  PutVarintSigned(&words, 0);
  PutVarint64(&words, 1);
  std::string fences = words;
  PutVarint64(&words, uint64_t{1} << 61);
  PutVarint64(&fences, 8);
  fences.append(64, '\0');
  PutVarint64(&fences, uint64_t{1} << 60);  // and no fence bytes
  IdRun out;
  Status s = IdRun::DecodeDescriptor(words, &out);
  EXPECT_EQ(s.ToString(), "id run descriptor: bad filter size");
  s = IdRun::DecodeDescriptor(fences, &out);
  EXPECT_EQ(s.ToString(), "id run descriptor: bad fences");
}

// Regression: a descriptor with an empty filter memcpy'd to a null pointer
// (undefined behaviour) and, loaded, would have answered every lookup
// "absent". Found by id_run_fuzz (fuzz/corpus/id_run/empty_filter.bin).
TEST(IdRun, RejectsAnEmptyFilter) {
  std::string bytes;  // version 2, run 16, day 0, wall 0, 0 ids, 0 filter words, 0 fences
  for (uint64_t v : {2, 16, 0, 0, 0, 0, 0}) PutVarint64(&bytes, v);
  IdRun out;
  EXPECT_EQ(IdRun::DecodeDescriptor(bytes, &out).ToString(),
            "id run descriptor: filter size does not match the id count");
}

TEST(IdRun, RejectsADescriptorThatDisagreesWithItsCount) {
  std::vector<std::pair<Hash128, int32_t>> entries;
  for (uint64_t i = 0; i < 300; ++i) entries.push_back({{i, i * 7}, 19675});
  Built b = BuildRun(entries);
  std::string bytes;
  b.run.EncodeDescriptor(&bytes);
  IdRun out;
  ASSERT_TRUE(IdRun::DecodeDescriptor(bytes, &out).ok());
  // The count is the fifth varint (version 2, run 7, day, wall, count):
  // 300 ids would need 2 fences and 8 filter words; claim 1000.
  std::string_view in(bytes);
  uint64_t u;
  int64_t i64;
  ASSERT_TRUE(GetVarint64(&in, &u) && GetVarint64(&in, &u) && GetVarintSigned(&in, &i64) &&
              GetVarintSigned(&in, &i64));
  std::string head(bytes.data(), bytes.size() - in.size());
  ASSERT_TRUE(GetVarint64(&in, &u));
  ASSERT_EQ(u, 300u);
  PutVarint64(&head, 1000);
  head.append(in);
  EXPECT_EQ(IdRun::DecodeDescriptor(head, &out).ToString(),
            "id run descriptor: fences do not match the id count");
}

}  // namespace
}  // namespace tierstream::state
