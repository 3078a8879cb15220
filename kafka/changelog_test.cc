#include "kafka/changelog.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace tierstream::kafka::changelog {
namespace {

class Partition {
 public:
  // Appends a record and returns its offset.
  int64_t Claim() {
    return Add(Encoded([](std::string* o) { EncodeClaim("i", o); }));
  }
  int64_t Chunk(uint64_t generation, uint64_t checkpoint) {
    return Add(Encoded([&](std::string* o) { EncodeChunk(generation, checkpoint, "ops", o); }));
  }
  int64_t Marker(uint64_t generation, uint64_t checkpoint, bool base, uint64_t events = 0) {
    pipeline::ShardMark mark{generation, checkpoint, {events, 0}};
    return Add(Encoded([&](std::string* o) { EncodeMarker(mark, base, o); }));
  }
  int64_t Changes(uint64_t generation, uint64_t checkpoint, std::vector<std::string> changes) {
    return Add(Encoded([&](std::string* o) {
      EncodeChanges(generation, checkpoint, changes, 0, changes.size(), o);
    }));
  }
  int64_t Published(uint64_t generation, uint64_t checkpoint) {
    return Add(Encoded([&](std::string* o) { EncodePublished(generation, checkpoint, o); }));
  }
  RestorePlan Plan() const {
    RestorePlan plan;
    for (size_t i = 0; i < records_.size(); ++i) {
      Record r;
      EXPECT_TRUE(Decode(records_[i], &r));
      plan.Add(static_cast<int64_t>(i), r);
    }
    return plan;
  }

 private:
  template <typename Fn>
  static std::string Encoded(Fn fn) {
    std::string s;
    fn(&s);
    return s;
  }
  int64_t Add(std::string r) {
    records_.push_back(std::move(r));
    return static_cast<int64_t>(records_.size()) - 1;
  }
  std::vector<std::string> records_;
};

TEST(RestorePlan, TheNewestBaseAndItsIncrementsCount) {
  Partition p;
  const uint64_t g1 = GenerationOf(p.Claim());
  const int64_t base1 = p.Chunk(g1, 1);
  p.Marker(g1, 1, true);
  const int64_t inc1 = p.Chunk(g1, 2);
  p.Marker(g1, 2, false, 40);
  RestorePlan plan = p.Plan();
  ASSERT_TRUE(plan.newest());
  EXPECT_EQ(plan.newest()->checkpoint, 2u);
  EXPECT_EQ(plan.newest()->position.events, 40u);
  EXPECT_EQ(plan.first_offset(), base1);
  EXPECT_TRUE(plan.Applies(base1));
  EXPECT_TRUE(plan.Applies(inc1));

  // A new owner: its base replaces the chain; a zombie's records after the
  // claim (the old generation) count for nothing, nor does a checkpoint
  // whose marker never came.
  const uint64_t g2 = GenerationOf(p.Claim());
  const int64_t zombie = p.Chunk(g1, 3);
  p.Marker(g1, 3, false, 99);
  const int64_t base2 = p.Chunk(g2, 3);
  p.Marker(g2, 3, true, 40);
  const int64_t inc2 = p.Chunk(g2, 4);
  p.Marker(g2, 4, false, 55);
  const int64_t unfinished = p.Chunk(g2, 5);
  plan = p.Plan();
  ASSERT_TRUE(plan.newest());
  EXPECT_EQ(plan.newest()->generation, g2);
  EXPECT_EQ(plan.newest()->checkpoint, 4u);
  EXPECT_EQ(plan.newest()->position.events, 55u);
  EXPECT_EQ(plan.first_offset(), base2);
  EXPECT_FALSE(plan.Applies(base1));
  EXPECT_FALSE(plan.Applies(zombie));
  EXPECT_TRUE(plan.Applies(base2));
  EXPECT_TRUE(plan.Applies(inc2));
  EXPECT_FALSE(plan.Applies(unfinished));
}

TEST(RestorePlan, AClaimWithoutABaseKeepsThePreviousOwnersState) {
  Partition p;
  const uint64_t g1 = GenerationOf(p.Claim());
  p.Chunk(g1, 1);
  p.Marker(g1, 1, true, 10);
  const uint64_t g2 = GenerationOf(p.Claim());  // its owner died before its base
  p.Chunk(g2, 2);
  p.Marker(g2, 2, false, 20);  // an increment over no base of its own: ignored
  RestorePlan plan = p.Plan();
  ASSERT_TRUE(plan.newest());
  EXPECT_EQ(plan.newest()->generation, g1);
  EXPECT_EQ(plan.newest()->position.events, 10u);
}

// The changes a plan reports as unpublished, decoded, in order.
std::vector<std::string> Unpublished(const RestorePlan& plan) {
  std::vector<std::string> out;
  std::vector<std::string_view> changes;
  for (const RestorePlan::Unpublished& u : plan.unpublished()) {
    EXPECT_TRUE(DecodeChanges(u.payload, &changes));
    for (std::string_view c : changes) out.emplace_back(c);
  }
  return out;
}

TEST(RestorePlan, ChangesOfCountedCheckpointsNotYetPublishedAreProducedAgain) {
  Partition p;
  const uint64_t g1 = GenerationOf(p.Claim());
  p.Chunk(g1, 1);
  p.Changes(g1, 1, {"a1"});
  p.Marker(g1, 1, true);
  p.Chunk(g1, 2);
  p.Changes(g1, 2, {"a2", "b1"});
  p.Marker(g1, 2, false);
  p.Published(g1, 1);
  EXPECT_EQ(Unpublished(p.Plan()), (std::vector<std::string>{"a2", "b1"}));
  p.Published(g1, 2);
  EXPECT_TRUE(Unpublished(p.Plan()).empty());

  // The owner dies after its marker, before it published: the next owner
  // (whose claim is later) produces them again.
  p.Changes(g1, 3, {"a3"});
  p.Marker(g1, 3, false);
  const uint64_t g2 = GenerationOf(p.Claim());
  p.Published(g1, 3);  // a zombie's: it counts for nothing
  EXPECT_EQ(Unpublished(p.Plan()), (std::vector<std::string>{"a3"}));
  // A claim that wrote no base leaves them unpublished for the next.
  const uint64_t g3 = GenerationOf(p.Claim());
  EXPECT_EQ(Unpublished(p.Plan()), (std::vector<std::string>{"a3"}));
  // A base: its writer produced them first; its own checkpoint's changes
  // wait for its published record.
  p.Chunk(g3, 4);
  p.Changes(g3, 4, {"b2"});
  p.Marker(g3, 4, true);
  EXPECT_EQ(Unpublished(p.Plan()), (std::vector<std::string>{"b2"}));
  p.Published(g3, 4);
  EXPECT_TRUE(Unpublished(p.Plan()).empty());
  p.Changes(g3, 5, {"b3"});  // its marker never came: its state is not restored
  EXPECT_TRUE(Unpublished(p.Plan()).empty());
  (void)g2;
}

TEST(RestorePlan, NothingWrittenIsNoState) {
  Partition p;
  p.Claim();
  EXPECT_FALSE(p.Plan().newest());
  EXPECT_EQ(p.Plan().first_offset(), -1);
  Record r;
  EXPECT_FALSE(Decode("", &r));
  EXPECT_FALSE(Decode("M\x01", &r));
}

}  // namespace
}  // namespace tierstream::kafka::changelog
