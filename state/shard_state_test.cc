#include "state/shard_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>

namespace tierstream::state {
namespace {

using ingest::Event;
using ingest::EventType;

constexpr int64_t kDayStart = 1763913600000;  // 2025-11-24T00:00+08:00

class ShardStateTest : public ::testing::Test {
 protected:
  ShardStateTest() : shard_(0, Config{}) {}

  void Send(std::string user, EventType type, int64_t ts, std::string referrer = "") {
    ids_.push_back("e" + std::to_string(ids_.size()));
    users_.push_back(std::move(user));
    refs_.push_back(std::move(referrer));
    Event e;
    e.event_id = ids_.back();
    e.user_id = users_.back();
    e.referrer_id = refs_.back();
    e.type = type;
    e.ts_ms = ts;
    if (type == EventType::kOrder) e.amount_fen = 100;
    t_ = std::max(t_, ts);
    ASSERT_TRUE(shard_.MarkSeen(e.event_id, 0, ts));
    shard_.Apply(e, Today());
  }
  int32_t Today() const { return DayOf(t_, Config{}.utc_offset_ms); }
  KpiPartial Kpis() {
    EXPECT_TRUE(shard_.Sweep(Today(), SIZE_MAX));
    return shard_.Kpis(Today());
  }
  int64_t TierCount(Tier t) { return Kpis().tiers[static_cast<size_t>(t)]; }

  ShardState shard_;
  std::deque<std::string> ids_, users_, refs_;  // deque: stable string storage
  int64_t t_ = 0;
};

TEST_F(ShardStateTest, MemberTurnsDormantAsTimeAdvancesWithoutHerEvents) {
  Send("alice", EventType::kJoin, kDayStart - 40 * kMsPerDay);
  for (int i = 0; i < 3; ++i) Send("alice", EventType::kMessage, kDayStart + i);
  EXPECT_EQ(TierCount(Tier::kActive), 1);
  // Only another user's events move T: seven days later alice is dormant.
  Send("bob", EventType::kMessage, kDayStart + 7 * kMsPerDay);
  KpiPartial k = Kpis();
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kActive)], 0);
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kDormant)], 1);  // alice
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kNew)], 1);      // bob, first seen today
  Profile p;
  ASSERT_TRUE(shard_.GetProfile("alice", Today(), &p));
  EXPECT_EQ(p.tier, Tier::kDormant);
  EXPECT_EQ(p.interactions_7d, 0);
  EXPECT_EQ(p.interactions_30d, 3);
}

TEST_F(ShardStateTest, NewMemberStopsBeingNewOnDayThirty) {
  Send("carol", EventType::kJoin, kDayStart);
  Send("dave", EventType::kMessage, kDayStart + 29 * kMsPerDay);
  EXPECT_EQ(TierCount(Tier::kNew), 2);
  Send("dave", EventType::kMessage, kDayStart + 30 * kMsPerDay);
  KpiPartial k = Kpis();
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kNew)], 1);  // dave only
  EXPECT_EQ(k.tiers[static_cast<size_t>(Tier::kDormant)], 1);
  EXPECT_EQ(k.new_members_30d, 1);
}

TEST_F(ShardStateTest, SweepRunsInBoundedSlices) {
  for (int i = 0; i < 100; ++i) {
    for (int k = 0; k < 3; ++k) Send("u" + std::to_string(i), EventType::kMessage, kDayStart + k);
  }
  Send("z", EventType::kMessage, kDayStart + 8 * kMsPerDay);
  int slices = 0;
  while (!shard_.Sweep(Today(), 10)) ++slices;
  EXPECT_GE(slices, 9);
  EXPECT_EQ(shard_.Kpis(Today()).tiers[static_cast<size_t>(Tier::kNew)], 101);
}

TEST_F(ShardStateTest, ASweepCutShortByACheckpointResumesAfterReload) {
  // Regression (found by `tierstream verify` on a 10M-event replay): the
  // meta said a day was swept while part of its tier checks were still
  // pending, so after a restart those users kept stale tiers.
  for (int i = 0; i < 200; ++i) {
    // Long-standing members, active on one day only: their one pending
    // check is the day that window closes.
    Send("u" + std::to_string(i), EventType::kJoin, kDayStart - 100 * kMsPerDay);
    for (int k = 0; k < 3; ++k) {
      Send("u" + std::to_string(i), EventType::kMessage, kDayStart - 40 * kMsPerDay + k);
    }
  }
  EXPECT_EQ(Kpis().tiers[static_cast<size_t>(Tier::kActive)], 200);
  Send("late", EventType::kMessage, kDayStart);
  EXPECT_FALSE(shard_.Sweep(Today(), 50));  // cut short
  // Persist everything (as a checkpoint would) and reload it elsewhere.
  std::map<std::string, std::string> users;
  shard_.DrainDirty([&](std::string_view id, std::string_view bytes) {
    users[std::string(id)] = std::string(bytes);
  });
  std::string meta;
  shard_.EncodeMeta(1, &meta);
  ShardState reloaded(0, Config{});
  uint64_t seq;
  ASSERT_TRUE(reloaded.DecodeMeta(meta, &seq).ok());
  for (const auto& [id, bytes] : users) ASSERT_TRUE(reloaded.LoadUser(id, bytes, true).ok());
  reloaded.RebuildTimers();
  ASSERT_TRUE(reloaded.Sweep(Today(), SIZE_MAX));
  EXPECT_EQ(reloaded.Kpis(Today()).tiers, Kpis().tiers);
  EXPECT_EQ(reloaded.Kpis(Today()).tiers[static_cast<size_t>(Tier::kDormant)], 200);
}

// The wall clock of these tests: ids recorded at 0 are past its horizon.
constexpr int64_t kWallLater = 9 * kMsPerDay;

TEST_F(ShardStateTest, DuplicateIdsAreRecognisedUntilTheHorizon) {
  EXPECT_TRUE(shard_.MarkSeen("x", 0, kDayStart));
  EXPECT_FALSE(shard_.MarkSeen("x", 0, kDayStart));
  EXPECT_TRUE(shard_.MarkSeen("x", 1, kDayStart));  // a credit is a different key
  const int32_t day = DayOf(kDayStart, Config{}.utc_offset_ms);
  shard_.SetWallClock(kWallLater);
  shard_.ExpireSeen(day + 8);
  EXPECT_FALSE(shard_.MarkSeen("x", 0, kDayStart));
  shard_.ExpireSeen(day + 9);
  EXPECT_TRUE(shard_.MarkSeen("x", 0, kDayStart));
}

TEST_F(ShardStateTest, ExpiredIdsAreForgottenAtOnceAndFreedInSlices) {
  const int32_t day = DayOf(kDayStart, Config{}.utc_offset_ms);
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(shard_.MarkSeen("id" + std::to_string(i), 0, kDayStart));
  shard_.SetWallClock(kWallLater);
  EXPECT_FALSE(shard_.ExpireSeen(day + 9, 10));  // 90 still to free
  EXPECT_GT(shard_.seen_count(), 50u);
  // Not freed yet, but expired: fresh again, and kept from the new day.
  const int64_t later = kDayStart + 9 * kMsPerDay;
  EXPECT_TRUE(shard_.MarkSeen("id99", 0, later));
  EXPECT_TRUE(shard_.MarkSeen("id0", 0, later));
  EXPECT_FALSE(shard_.MarkSeen("id99", 0, later));
  int calls = 1;  // 100 ids, 10 per call
  for (bool done = false; !done; ++calls) done = shard_.ExpireSeen(day + 9, 10);
  EXPECT_EQ(calls, 10);
  EXPECT_EQ(shard_.seen_count(), 2u);  // the two re-seen ids
  EXPECT_FALSE(shard_.MarkSeen("id0", 0, later));
}

TEST_F(ShardStateTest, BackfilledEventIdsAreKeptFromTheirArrival) {
  // Regression: an event from half a year ago, arriving today, was forgotten
  // at the next expiry, so its retry counted twice.
  const int32_t today = DayOf(kDayStart, Config{}.utc_offset_ms);
  const int64_t old_ts = kDayStart - 180 * kMsPerDay;
  EXPECT_TRUE(shard_.MarkSeen("old", 0, old_ts, today));
  shard_.SetWallClock(kWallLater);
  shard_.ExpireSeen(today + 8);
  EXPECT_FALSE(shard_.MarkSeen("old", 0, old_ts, today + 8));
  shard_.ExpireSeen(today + 9);
  EXPECT_TRUE(shard_.MarkSeen("old", 0, old_ts, today + 9));
}

// Regression: a 30-day file sent twice re-accepted ~60% of it, because ids
// expired 8 days of *event time* after they arrived and a backfill races
// event time forward. An id is now kept until the wall clock is past the
// horizon too.
TEST_F(ShardStateTest, IdsAreRememberedForTheWallClockHorizonHoweverFarTimeRaces) {
  const int64_t wall = 1'800'000'000'000;  // any wall clock
  const int32_t day = DayOf(kDayStart, Config{}.utc_offset_ms);
  shard_.SetWallClock(wall);
  EXPECT_TRUE(shard_.MarkSeen("first", 0, kDayStart, day));
  // T races 60 days ahead within a minute of wall clock.
  shard_.SetWallClock(wall + 60'000);
  EXPECT_TRUE(shard_.MarkSeen("later", 0, kDayStart + 60 * kMsPerDay, day + 60));
  shard_.ExpireSeen(day + 60);
  EXPECT_FALSE(shard_.MarkSeen("first", 0, kDayStart, day + 60));
  EXPECT_FALSE(shard_.BeyondHorizon(kDayStart));  // nothing forgotten yet
  // Just before its wall-clock horizon: still remembered.
  shard_.SetWallClock(wall + 8 * kMsPerDay - 1);
  shard_.ExpireSeen(day + 60);
  EXPECT_FALSE(shard_.MarkSeen("first", 0, kDayStart, day + 60));
  // Past both horizons: forgotten, and an event that old is flagged.
  shard_.SetWallClock(wall + 8 * kMsPerDay);
  shard_.ExpireSeen(day + 60);
  EXPECT_TRUE(shard_.BeyondHorizon(kDayStart));
  EXPECT_FALSE(shard_.BeyondHorizon(kDayStart + 60 * kMsPerDay));
  EXPECT_TRUE(shard_.MarkSeen("first", 0, kDayStart, day + 60));
  // "later" arrived on day 60: within the event-time horizon still.
  EXPECT_FALSE(shard_.MarkSeen("later", 0, kDayStart + 60 * kMsPerDay, day + 60));
}

TEST_F(ShardStateTest, PersistedIdsKeepTheirWallClock) {
  const int64_t wall = 1'800'000'000'000;
  const int32_t day = DayOf(kDayStart, Config{}.utc_offset_ms);
  Hash128 h = HashId128("kept", 0);
  std::string blob;
  BeginSeenBlob(wall, &blob);
  AppendSeenId(h, &blob);
  ShardState reloaded(0, Config{});
  reloaded.SetWallClock(wall + kMsPerDay);
  ASSERT_TRUE(reloaded.LoadSeen(day, blob).ok());
  reloaded.ExpireSeen(day + 30);  // far past the event-time horizon
  EXPECT_FALSE(reloaded.MarkSeen("kept", 0, kDayStart, day + 30));
  reloaded.SetWallClock(wall + 8 * kMsPerDay);
  reloaded.ExpireSeen(day + 30);
  EXPECT_TRUE(reloaded.MarkSeen("kept", 0, kDayStart, day + 30));
  EXPECT_LT(reloaded.oldest_kept_day(), day + 30);  // the new one is kept from day 30
  // Blobs written before wall-clock horizons (bare hashes) still load.
  std::string bare;
  AppendSeenId(HashId128("bare", 0), &bare);
  ShardState old(0, Config{});
  ASSERT_TRUE(old.LoadSeen(day, bare).ok());
  EXPECT_FALSE(old.MarkSeen("bare", 0, kDayStart, day));
  EXPECT_FALSE(old.LoadSeen(day, bare + "x").ok());
}

// A persisted day no event can have is damage: loaded, it would become the
// forgotten-through day of the next shard meta, which a restart refuses.
TEST(ShardStateIds, PersistedIdsOfImpossibleDaysAreCorruption) {
  std::string blob;
  BeginSeenBlob(1'800'000'000'000, &blob);
  AppendSeenId(HashId128("x", 0), &blob);
  ShardState shard(0, Config{});
  EXPECT_EQ(shard.LoadSeen(-5, blob).ToString(), "seen ids: day -5 out of range");
  EXPECT_EQ(shard.seen_count(), 0u);
  std::vector<std::pair<Hash128, int32_t>> entries = {{HashId128("y", 0), 900'000}};
  IdRun run = IdRun::Build(1, &entries, [](uint32_t, std::string_view) {});
  std::string descriptor;
  run.EncodeDescriptor(&descriptor);
  EXPECT_EQ(shard.LoadIdRun(descriptor).ToString(), "id run: max day 900000 out of range");
  EXPECT_EQ(shard.id_runs(), 0u);
}

TEST_F(ShardStateTest, KpiWindowsAndMetaRoundTrip) {
  Send("a", EventType::kJoin, kDayStart - 45 * kMsPerDay, "r");
  Send("b", EventType::kJoin, kDayStart - 5 * kMsPerDay, "r");
  Send("a", EventType::kOrder, kDayStart - 31 * kMsPerDay);
  Send("a", EventType::kOrder, kDayStart);
  KpiPartial k = Kpis();
  EXPECT_EQ(k.orders_30d, 1);
  EXPECT_EQ(k.referred_joins_30d, 1);
  EXPECT_EQ(k.referred_joins_prev_30d, 1);
  EXPECT_EQ(k.buyers_total, 1);
  EXPECT_EQ(k.repeat_buyers_total, 1);
  EXPECT_EQ(k.events_accepted, 4);

  // Regression: duplicates and rejections were not in the meta (rejections
  // only as shard 0's share of a process-wide count).
  shard_.CountIngest(3, 7, 2);
  std::string meta;
  shard_.EncodeMeta(42, &meta);
  ShardState copy(0, Config{});
  uint64_t seq = 0;
  ASSERT_TRUE(copy.DecodeMeta(meta, &seq).ok());
  EXPECT_EQ(seq, 42u);
  KpiPartial c = copy.Kpis(Today());
  EXPECT_EQ(c.orders_30d, k.orders_30d);
  EXPECT_EQ(c.members, k.members);
  EXPECT_EQ(c.tiers, k.tiers);
  EXPECT_EQ(c.events_duplicate, 3);
  EXPECT_EQ(c.events_rejected, 7);
  EXPECT_EQ(copy.events_beyond_horizon(), 2);
  EXPECT_FALSE(copy.DecodeMeta(meta.substr(0, meta.size() - 1), &seq).ok());
}

// The store side of spilled runs, in memory; reads can be made to fail.
class FakeRuns : public IdRunSource {
 public:
  Status ReadIdBlock(uint64_t run_no, uint32_t block, std::string* bytes) override {
    if (fail) return Status::IoError("injected");
    auto it = blocks.find({run_no, block});
    if (it == blocks.end()) return Status::Corruption("no such block");
    *bytes = it->second;
    return Status::Ok();
  }
  // A spill and a checkpoint as the pipeline takes them: spills when the map
  // is over its limit (blocks first, descriptor with the checkpoint), and
  // applies the expired runs' deletion.
  void Checkpoint(ShardState* shard) {
    if (shard->WantsSpill()) {
      uint64_t run_no = 0;
      int64_t wall_ms = 0;
      const auto& frozen = shard->FreezeIdsForSpill(0, &run_no, &wall_ms);
      std::vector<std::pair<Hash128, int32_t>> entries;
      frozen.ForEach([&](const Hash128& h, int32_t day) { entries.emplace_back(h, day); });
      IdRun run = IdRun::Build(run_no, &entries, [&](uint32_t b, std::string_view bytes) {
        blocks[{run_no, b}] = std::string(bytes);
      });
      run.set_max_wall_ms(wall_ms);
      std::string descriptor;
      run.EncodeDescriptor(&descriptor);
      shard->SpillDone(true, &run, descriptor);
    }
    NewSeenIds taken = shard->TakeNewSeen();
    (void)taken.EncodeByDay();  // the committer's seen blobs
    shard->DrainUnconfirmedRuns(
        [&](const ShardState::UnconfirmedRun& r) { descriptors[r.run_no] = r.descriptor; });
    shard->DrainExpiredRuns([&](uint64_t run_no) {
      std::erase_if(blocks, [&](const auto& kv) { return kv.first.first == run_no; });
      descriptors.erase(run_no);
    });
    shard->CheckpointDone(true, std::move(taken));
  }
  bool fail = false;
  std::map<std::pair<uint64_t, uint32_t>, std::string> blocks;
  std::map<uint64_t, std::string> descriptors;
};

TEST(ShardStateIds, SpilledIdsStayDuplicatesUntilTheHorizon) {
  FakeRuns runs;
  ShardState shard(0, Config{}, nullptr, &runs);
  shard.set_memory_id_limit(1000);
  const int32_t day = DayOf(kDayStart, Config{}.utc_offset_ms);
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 1500; ++i) {
      ASSERT_TRUE(shard.MarkSeen("r" + std::to_string(round) + "-" + std::to_string(i), 0,
                                 kDayStart + round * kMsPerDay));
    }
    runs.Checkpoint(&shard);
  }
  EXPECT_EQ(shard.id_runs(), 5u);
  EXPECT_EQ(shard.spilled_ids(), 7500u);
  EXPECT_EQ(shard.seen_count(), 7500u);
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 1500; ++i) {
      ASSERT_FALSE(
          shard.MarkSeen("r" + std::to_string(round) + "-" + std::to_string(i), 0, kDayStart))
          << round << " " << i;
    }
  }
  EXPECT_TRUE(shard.MarkSeen("r0-0", 1, kDayStart));  // other seed: another key
  EXPECT_TRUE(shard.MarkSeen("fresh", 0, kDayStart));
  EXPECT_TRUE(shard.TakeIdError().ok());
  // Most fresh ids never read a block: the filters answer.
  const uint64_t reads = shard.id_block_reads();
  for (int i = 0; i < 10000; ++i)
    ASSERT_TRUE(shard.MarkSeen("new" + std::to_string(i), 0, kDayStart));
  EXPECT_LT(shard.id_block_reads() - reads, 500u);

  // Day 0's run expires at day 9 (horizon 8), as the in-memory ids do,
  // once the wall clock is past the horizon too.
  shard.SetWallClock(kWallLater);
  shard.ExpireSeen(day + 8);
  EXPECT_EQ(shard.id_runs(), 5u);
  EXPECT_FALSE(shard.MarkSeen("r0-1", 0, kDayStart));
  shard.ExpireSeen(day + 9);
  EXPECT_EQ(shard.id_runs(), 4u);
  EXPECT_TRUE(shard.MarkSeen("r0-1", 0, kDayStart + 9 * kMsPerDay));
  EXPECT_FALSE(shard.MarkSeen("r1-1", 0, kDayStart));
  runs.Checkpoint(&shard);
  EXPECT_EQ(runs.descriptors.count(1), 0u);  // run 1 (day 0) deleted from the store

  // Reloaded from the store's descriptors, the runs answer the same.
  ShardState reloaded(0, Config{}, nullptr, &runs);
  reloaded.SetWallClock(kWallLater);
  for (const auto& [run_no, d] : runs.descriptors) ASSERT_TRUE(reloaded.LoadIdRun(d).ok());
  EXPECT_FALSE(reloaded.MarkSeen("r4-1499", 0, kDayStart));
  EXPECT_TRUE(reloaded.MarkSeen("r0-2", 0, kDayStart));  // its run was deleted
}

TEST(ShardStateIds, SpilledIdsAreKeptForTheWallClockHorizon) {
  FakeRuns runs;
  ShardState shard(0, Config{}, nullptr, &runs);
  shard.set_memory_id_limit(100);
  const int64_t wall = 1'800'000'000'000;
  const int32_t day = DayOf(kDayStart, Config{}.utc_offset_ms);
  shard.SetWallClock(wall);
  for (int i = 0; i < 500; ++i)
    ASSERT_TRUE(shard.MarkSeen("s" + std::to_string(i), 0, kDayStart, day));
  runs.Checkpoint(&shard);
  ASSERT_EQ(shard.id_runs(), 1u);
  shard.SetWallClock(wall + kMsPerDay);
  shard.ExpireSeen(day + 40);  // event time far past, wall clock not
  EXPECT_EQ(shard.id_runs(), 1u);
  EXPECT_FALSE(shard.MarkSeen("s7", 0, kDayStart, day + 40));
  // So does a reload from the store's descriptor.
  ShardState reloaded(0, Config{}, nullptr, &runs);
  reloaded.SetWallClock(wall + kMsPerDay);
  for (const auto& [run_no, d] : runs.descriptors) ASSERT_TRUE(reloaded.LoadIdRun(d).ok());
  reloaded.ExpireSeen(day + 40);
  EXPECT_FALSE(reloaded.MarkSeen("s8", 0, kDayStart, day + 40));
  shard.SetWallClock(wall + 8 * kMsPerDay);
  shard.ExpireSeen(day + 40);
  EXPECT_EQ(shard.id_runs(), 0u);
  EXPECT_TRUE(shard.MarkSeen("s9", 0, kDayStart, day + 40));
}

// A spill whose run cannot be written gives its ids back. While frozen they
// were kept by the wall clock; the oldest kept day may have moved past their
// days meanwhile (T raced on): they must stay duplicates, and the next
// checkpoint must persist them all again (their old blobs may be deleted).
TEST(ShardStateIds, AFailedSpillGivesEveryIdBackRememberedAndToPersist) {
  FakeRuns runs;
  ShardState shard(0, Config{}, nullptr, &runs);
  shard.set_memory_id_limit(10);
  const int64_t wall = 1'800'000'000'000;
  const int32_t day = DayOf(kDayStart, Config{}.utc_offset_ms);
  shard.SetWallClock(wall);
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(shard.MarkSeen("f" + std::to_string(i), 0, kDayStart, day));
  NewSeenIds persisted = shard.TakeNewSeen();  // as if checkpointed: in seen blobs
  shard.CheckpointDone(true, std::move(persisted));
  ASSERT_TRUE(shard.WantsSpill());
  uint64_t run_no = 0;
  int64_t wall_ms = 0;
  (void)shard.FreezeIdsForSpill(0, &run_no, &wall_ms);
  // Meanwhile T races 40 days on: the in-memory buckets (new ids only) let
  // the oldest kept day pass the frozen ids' day.
  shard.SetWallClock(wall + 60'000);
  ASSERT_TRUE(shard.MarkSeen("late", 0, kDayStart + 40 * kMsPerDay, day + 40));
  shard.ExpireSeen(day + 40);
  ASSERT_GT(shard.oldest_kept_day(), day);
  EXPECT_FALSE(shard.MarkSeen("f7", 0, kDayStart, day + 40));  // frozen, kept by its wall clock
  shard.SpillDone(false, nullptr, "");
  EXPECT_FALSE(shard.spilling());
  for (int i = 0; i < 50; ++i) {
    ASSERT_FALSE(shard.MarkSeen("f" + std::to_string(i), 0, kDayStart, day + 40)) << i;
  }
  size_t given_back = 0;
  NewSeenIds taken = shard.TakeNewSeen();
  for (const auto& [h, d] : taken.ids()) {
    given_back += d >= shard.oldest_kept_day() ? 1 : 0;
  }
  EXPECT_EQ(given_back, 51u);  // the 50 frozen ones and "late", all to be persisted
  shard.CheckpointDone(true, std::move(taken));
}

TEST(ShardStateIds, AFailedBlockReadIsReported) {
  FakeRuns runs;
  ShardState shard(0, Config{}, nullptr, &runs);
  shard.set_memory_id_limit(10);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(shard.MarkSeen("x" + std::to_string(i), 0, kDayStart));
  runs.Checkpoint(&shard);
  ASSERT_EQ(shard.id_runs(), 1u);
  runs.fail = true;
  shard.MarkSeen("x5", 0, kDayStart);  // must read a block: the filter holds x5
  EXPECT_FALSE(shard.TakeIdError().ok());
  EXPECT_TRUE(shard.TakeIdError().ok());  // taken once
  shard.UnmarkSeen("x5", 0);
  runs.fail = false;
  EXPECT_FALSE(shard.MarkSeen("x5", 0, kDayStart));
}

// Persisted users, as the store keeps them for eviction, found by hash
// (`hash`: the shard's) as the store's user index finds them.
class FakeUsers : public UserSource {
 public:
  Status Load(std::string_view user_id, std::string* encoded, bool* found) override {
    ++loads;
    if (fail) return Status::IoError("store: injected read failure");
    auto it = users.find(std::string(user_id));
    *found = it != users.end();
    if (*found) *encoded = it->second;
    return Status::Ok();
  }
  Status FindByHash(std::span<const uint64_t> hashes, std::vector<std::string>* user_ids) override {
    EXPECT_TRUE(std::is_sorted(hashes.begin(), hashes.end()));
    if (fail) return Status::IoError("store: injected read failure");
    for (uint64_t h : hashes) {
      ++hash_lookups;
      for (const auto& [id, bytes] : users) {
        if (hash(id) == h) user_ids->push_back(id);
      }
    }
    return Status::Ok();
  }
  std::map<std::string, std::string> users;
  uint64_t (*hash)(std::string_view) = &ShardState::UserHash;
  int loads = 0;
  int hash_lookups = 0;
  bool fail = false;  // every read fails, as a store that lost its files would
};

// An Event borrows its strings: the ids of these tests live as long as the
// test binary (a view of the by-value parameters dangled once Message
// returned; ASan's stack-use-after-scope).
std::string_view Keep(std::string s) {
  static std::deque<std::string> kept;
  return kept.emplace_back(std::move(s));
}

Event Message(std::string id, std::string user, int64_t ts) {
  Event e;
  e.event_id = Keep(std::move(id));
  e.user_id = Keep(std::move(user));
  e.type = EventType::kMessage;
  e.ts_ms = ts;
  return e;
}

// Regression: ShardState called std::abort() when an evicted user could not
// be read back (applying her event to a blank state would overwrite her
// persisted one). The read is now an error: PrepareUser reports it before
// the group is made durable, and Apply without it applies nothing and keeps
// the error.
TEST(ShardStateEvicted, AFailedReloadIsAnErrorNotABlankUser) {
  FakeUsers store;
  ShardState shard(0, Config{}, &store);
  const int32_t today = DayOf(kDayStart, Config{}.utc_offset_ms);
  std::vector<Event> events;
  for (int k = 0; k < 3; ++k) {
    events.push_back(Message("m" + std::to_string(k), "alice", kDayStart + k));
    shard.Apply(events.back(), today);
  }
  shard.DrainDirty([&](std::string_view id, std::string_view bytes) {
    store.users[std::string(id)] = std::string(bytes);
  });
  shard.CheckpointDone(true, NewSeenIds{});
  ASSERT_EQ(shard.EvictClean(0), 1u);  // two turns of the clock: bits cleared, then out
  ASSERT_EQ(shard.resident_users(), 0u);

  store.fail = true;
  EXPECT_EQ(shard.PrepareUser("alice").code(), StatusCode::kIoError);
  const Event fourth = Message("m3", "alice", kDayStart + 3);
  shard.Apply(fourth, today);
  EXPECT_EQ(shard.TakeUserError().code(), StatusCode::kIoError);
  EXPECT_TRUE(shard.TakeUserError().ok());  // taken
  Profile p;
  EXPECT_FALSE(shard.GetProfile("alice", today, &p));
  EXPECT_EQ(shard.TakeUserError().code(), StatusCode::kIoError);
  EXPECT_EQ(shard.resident_users(), 0u);
  EXPECT_EQ(shard.dirty_count(), 0u);

  store.fail = false;
  ASSERT_TRUE(shard.PrepareUser("alice").ok());
  EXPECT_EQ(shard.resident_users(), 1u);
  ASSERT_TRUE(shard.GetProfile("alice", today, &p));
  EXPECT_EQ(p.interactions_7d, 3);  // the failed event was not applied
  EXPECT_EQ(shard.Kpis(today).users_total, 1);
  EXPECT_EQ(shard.Kpis(today).events_accepted, 3);
}

// GetUserState (what an explanation reads) reads an evicted user back as
// GetProfile does, and keeps the error when it cannot.
TEST(ShardStateEvicted, GetUserStateReadsAnEvictedUserBackOrKeepsTheError) {
  FakeUsers store;
  ShardState shard(0, Config{}, &store);
  const int32_t today = DayOf(kDayStart, Config{}.utc_offset_ms);
  for (int k = 0; k < 2; ++k)
    shard.Apply(Message("g" + std::to_string(k), "carol", kDayStart + k), today);
  shard.DrainDirty([&](std::string_view id, std::string_view bytes) {
    store.users[std::string(id)] = std::string(bytes);
  });
  shard.CheckpointDone(true, NewSeenIds{});
  ASSERT_EQ(shard.EvictClean(0), 1u);
  ASSERT_EQ(shard.resident_users(), 0u);

  store.fail = true;
  EXPECT_EQ(shard.GetUserState("carol"), nullptr);
  EXPECT_EQ(shard.TakeUserError().code(), StatusCode::kIoError);
  store.fail = false;
  EXPECT_EQ(shard.GetUserState("nobody"), nullptr);
  EXPECT_TRUE(shard.TakeUserError().ok()) << "unknown is not an error";
  const UserState* s = shard.GetUserState("carol");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(ComputeWindows(*s, today).interactions_7d, 2);
  EXPECT_EQ(shard.resident_users(), 1u);
}

// A user PrepareUser found nowhere is created by the Apply that follows
// without a second read of the store.
TEST(ShardStateEvicted, PreparingANewUserReadsTheStoreOnce) {
  FakeUsers store;
  ShardState shard(0, Config{}, &store);
  const int32_t today = DayOf(kDayStart, Config{}.utc_offset_ms);
  shard.Apply(Message("m0", "alice", kDayStart), today);
  shard.DrainDirty([&](std::string_view id, std::string_view bytes) {
    store.users[std::string(id)] = std::string(bytes);
  });
  shard.CheckpointDone(true, NewSeenIds{});
  shard.EvictClean(0);
  shard.EvictClean(0);
  ASSERT_EQ(shard.resident_users(), 0u);
  store.loads = 0;
  ASSERT_TRUE(shard.PrepareUser("bob").ok());
  ASSERT_TRUE(shard.PrepareUser("bob").ok());
  shard.Apply(Message("m1", "bob", kDayStart + 1), today);
  EXPECT_EQ(store.loads, 1);
  EXPECT_TRUE(shard.TakeUserError().ok());
  EXPECT_EQ(shard.Kpis(today).users_total, 2);
}

// A sweep that cannot find its evicted users keeps their checks: the next
// sweep, once the store reads again, changes their tiers on time.
TEST(ShardStateEvicted, AFailedSweepKeepsItsChecks) {
  FakeUsers store;
  ShardState shard(0, Config{}, &store);
  ShardState reference(0, Config{});
  const int32_t today = DayOf(kDayStart, Config{}.utc_offset_ms);
  for (int u = 0; u < 20; ++u) {
    const Event e = Message("m" + std::to_string(u), "user" + std::to_string(u), kDayStart + u);
    shard.Apply(e, today);
    reference.Apply(e, today);
  }
  shard.DrainDirty([&](std::string_view id, std::string_view bytes) {
    store.users[std::string(id)] = std::string(bytes);
  });
  shard.CheckpointDone(true, NewSeenIds{});
  shard.EvictClean(0);
  shard.EvictClean(0);
  ASSERT_EQ(shard.resident_users(), 0u);
  // A month on, every user's tier changes by time alone (no longer new).
  const Event late = Message("late", "someone-else", kDayStart + 31 * kMsPerDay);
  const int32_t later = DayOf(late.ts_ms, Config{}.utc_offset_ms);
  ASSERT_TRUE(shard.PrepareUser(late.user_id).ok());
  shard.Apply(late, later);
  reference.Apply(late, later);
  ASSERT_TRUE(reference.Sweep(later, SIZE_MAX));
  store.fail = true;
  EXPECT_FALSE(shard.Sweep(later, SIZE_MAX));
  EXPECT_EQ(shard.TakeUserError().code(), StatusCode::kIoError);
  EXPECT_NE(shard.Kpis(later).tiers, reference.Kpis(later).tiers);
  store.fail = false;
  ASSERT_TRUE(shard.Sweep(later, SIZE_MAX));
  EXPECT_TRUE(shard.TakeUserError().ok());
  EXPECT_EQ(shard.Kpis(later).tiers, reference.Kpis(later).tiers);
}

// 200 users persisted, then all but 30 evicted; every profile must come back
// exact. With a warm tier the evicted come back from memory; with colliding
// hashes only one user per hash can be warm, the others come from the store.
void EvictAndReload(bool warm, bool colliding) {
  FakeUsers store;
  ShardState shard(0, Config{}, &store);
  ShardState reference(0, Config{});  // the same events, nothing evicted
  if (warm) shard.set_warm_memory(1 << 20);
  if (colliding) {
    shard.set_user_hash_for_testing([](std::string_view id) -> uint64_t { return id.size() % 4; });
    store.hash = [](std::string_view id) -> uint64_t { return id.size() % 4; };
  }
  const int32_t today = DayOf(kDayStart, Config{}.utc_offset_ms);
  for (int u = 0; u < 200; ++u) {
    for (int k = 0; k < 1 + u % 5; ++k) {
      Event e;
      const std::string id = "u" + std::to_string(u) + "-" + std::to_string(k);
      const std::string user = "user" + std::to_string(u);
      e.event_id = id;
      e.user_id = user;
      e.type = EventType::kMessage;
      e.ts_ms = kDayStart + u;
      ASSERT_TRUE(shard.MarkSeen(e.event_id, 0, e.ts_ms));
      shard.Apply(e, today);
      reference.Apply(e, today);
    }
  }
  shard.DrainDirty([&](std::string_view id, std::string_view bytes) {
    store.users[std::string(id)] = std::string(bytes);
  });
  shard.CheckpointDone(true, NewSeenIds{});
  shard.EvictClean(30);
  ASSERT_LE(shard.resident_users(), 30u);
  // Colliding: ids of 5, 6 and 7 characters make three hash values.
  EXPECT_EQ(shard.warm_users(), warm ? (colliding ? 3u : 170u) : 0u);
  // A month on, every evicted user's tier has changed by time alone (she is
  // no longer new): the pending checks of the evicted (warm or not) must
  // have been kept, and they bring the users back.
  const auto tiers_before = reference.Kpis(today).tiers;
  EXPECT_EQ(tiers_before[static_cast<size_t>(Tier::kNew)], 200);
  Event late;
  late.event_id = "late";
  late.user_id = "someone-else";
  late.type = EventType::kMessage;
  late.ts_ms = kDayStart + 31 * kMsPerDay;
  const int32_t later = DayOf(late.ts_ms, Config{}.utc_offset_ms);
  shard.Apply(late, later);
  reference.Apply(late, later);
  ASSERT_TRUE(shard.Sweep(later, SIZE_MAX));
  ASSERT_TRUE(reference.Sweep(later, SIZE_MAX));
  EXPECT_EQ(shard.Kpis(later).tiers, reference.Kpis(later).tiers);
  EXPECT_EQ(shard.Kpis(later).tiers[static_cast<size_t>(Tier::kNew)], 1);
  EXPECT_EQ(shard.warm_users(), 0u);
  EXPECT_GE(shard.reloads(), 170u);
  // One store read is for "someone-else", a new user (not found).
  if (warm && !colliding) {
    EXPECT_EQ(store.loads, 1);
    EXPECT_EQ(shard.warm_reloads(), shard.reloads());
  } else if (warm) {
    EXPECT_EQ(shard.warm_reloads(), 3u);  // one per hash value
    EXPECT_EQ(static_cast<uint64_t>(store.loads), shard.reloads() - 3 + 1);
  } else {
    EXPECT_EQ(shard.warm_reloads(), 0u);
  }
  for (int u = 0; u < 200; ++u) {
    Profile p, want;
    ASSERT_TRUE(shard.GetProfile("user" + std::to_string(u), later, &p)) << u;
    ASSERT_TRUE(reference.GetProfile("user" + std::to_string(u), later, &want)) << u;
    EXPECT_EQ(p.user_id, "user" + std::to_string(u));
    EXPECT_EQ(p.last_active, kDayStart + u) << u;
    EXPECT_EQ(p.tier, want.tier) << u;
  }
  Profile p;
  EXPECT_FALSE(shard.GetProfile("user200", later, &p));
}

TEST(ShardStateWarm, EvictedUsersComeBackFromMemory) { EvictAndReload(true, false); }
TEST(ShardStateWarm, UsersWhoseHashesCollideComeBackFromTheStore) { EvictAndReload(true, true); }
TEST(ShardStateWarm, WithoutAWarmTierEvictedUsersComeBackFromTheStore) {
  EvictAndReload(false, false);
}

// Three hash values (ids of 5, 6 and 7 characters) for 200 users: nearly
// every user collides in the index.
TEST(ShardStateIndex, UsersWhoseHashesCollideStayApart) { EvictAndReload(false, true); }

// Members who join on `join_day` (days after kDayStart) and do nothing
// else: each is new for 30 days and has one pending check, on day
// join_day + 30, when she turns dormant.
void Join(ShardState* shard, ShardState* reference, const std::string& user, int join_day,
          int32_t today) {
  Event e;
  const std::string id = "join-" + user + "-" + std::to_string(join_day);
  e.event_id = id;
  e.user_id = user;
  e.type = EventType::kJoin;
  e.ts_ms = kDayStart + join_day * kMsPerDay;
  ASSERT_TRUE(shard->MarkSeen(e.event_id, 0, e.ts_ms));
  shard->Apply(e, today);
  reference->Apply(e, today);
}

// Moves T to `day` (days after kDayStart) with another user's event and
// sweeps both shards (`budget` users per slice of `shard`) until done.
int32_t AdvanceTo(ShardState* shard, ShardState* reference, int day, size_t budget = SIZE_MAX) {
  Event e;
  const std::string id = "tick-" + std::to_string(day);
  e.event_id = id;
  e.user_id = "ticker";
  e.type = EventType::kMessage;
  e.ts_ms = kDayStart + day * kMsPerDay;
  const int32_t today = DayOf(e.ts_ms, Config{}.utc_offset_ms);
  EXPECT_TRUE(shard->MarkSeen(e.event_id, 0, e.ts_ms));
  shard->Apply(e, today);
  reference->Apply(e, today);
  while (!shard->Sweep(today, budget)) {
  }
  EXPECT_TRUE(reference->Sweep(today, SIZE_MAX));
  return today;
}

void Persist(ShardState* shard, FakeUsers* store) {
  shard->BeginSnapshot([&](std::string_view id, std::string_view bytes) {
    store->users[std::string(id)] = std::string(bytes);
  });
  ASSERT_TRUE(shard->SnapshotStep(SIZE_MAX));
  shard->CheckpointDone(true, NewSeenIds{});
}

// Regression (issue 10): checks of evicted users were kept by id, twice
// (~470 bytes each with 128-byte ids). By hash, users whose hashes collide
// share one check, due at the earlier of their days: each is re-checked
// then (the later one early, which changes nothing) and keeps her own
// timer from then on, so both change tier on their own day.
TEST(ShardStateEvicted, UsersSharingAHashEachChangeTierOnTheirOwnDay) {
  FakeUsers store;
  ShardState shard(0, Config{}, &store);
  ShardState reference(0, Config{});
  auto one_hash = [](std::string_view) -> uint64_t { return 7; };
  shard.set_user_hash_for_testing(one_hash);
  store.hash = one_hash;
  const int32_t day0 = DayOf(kDayStart, Config{}.utc_offset_ms);
  Join(&shard, &reference, "early", 0, day0);
  Join(&shard, &reference, "late", 5, day0 + 5);
  Persist(&shard, &store);
  shard.EvictClean(0);
  ASSERT_EQ(shard.resident_users(), 0u);
  auto tiers = [](ShardState& s, int32_t today) { return s.Kpis(today).tiers; };
  const auto new_tier = static_cast<size_t>(Tier::kNew);
  const auto dormant = static_cast<size_t>(Tier::kDormant);
  int32_t today = AdvanceTo(&shard, &reference, 29);
  EXPECT_EQ(tiers(shard, today)[new_tier], 3);  // and the ticker
  EXPECT_EQ(store.hash_lookups, 0);
  today = AdvanceTo(&shard, &reference, 30);  // "early" turns dormant
  EXPECT_EQ(tiers(shard, today), tiers(reference, today));
  EXPECT_EQ(tiers(shard, today)[dormant], 1);
  EXPECT_EQ(store.hash_lookups, 1);
  today = AdvanceTo(&shard, &reference, 34);
  EXPECT_EQ(tiers(shard, today)[dormant], 1);
  today = AdvanceTo(&shard, &reference, 35);  // "late" too, from her own timer
  EXPECT_EQ(tiers(shard, today), tiers(reference, today));
  EXPECT_EQ(tiers(shard, today)[dormant], 2);
  EXPECT_EQ(store.hash_lookups, 1);
}

// A user reloaded by an event and evicted again before her first check:
// one entry for her hash, due at the earlier day, which finds her resident
// or reloads her, and she changes tier on her (new) own day.
TEST(ShardStateEvicted, AUserEvictedTwiceKeepsOneCheck) {
  FakeUsers store;
  ShardState shard(0, Config{}, &store);
  ShardState reference(0, Config{});
  const int32_t day0 = DayOf(kDayStart, Config{}.utc_offset_ms);
  Join(&shard, &reference, "ann", 0, day0);
  Persist(&shard, &store);
  shard.EvictClean(0);
  // Ten days on she is active for a day (back from the store), then evicted again.
  int32_t today = AdvanceTo(&shard, &reference, 10);
  for (int i = 0; i < 3; ++i) {
    Event e;
    const std::string id = "m" + std::to_string(i);
    e.event_id = id;
    e.user_id = "ann";
    e.type = EventType::kMessage;
    e.ts_ms = kDayStart + 10 * kMsPerDay + i;
    ASSERT_TRUE(shard.MarkSeen(e.event_id, 0, e.ts_ms));
    shard.Apply(e, today);
    reference.Apply(e, today);
  }
  Persist(&shard, &store);
  shard.EvictClean(0);
  ASSERT_EQ(shard.resident_users(), 0u);
  for (int day = 11; day <= 45; ++day) {
    today = AdvanceTo(&shard, &reference, day);
    ASSERT_EQ(shard.Kpis(today).tiers, reference.Kpis(today).tiers) << "day " << day;
    Profile p, want;
    ASSERT_TRUE(reference.GetProfile("ann", today, &want));
    ASSERT_TRUE(shard.GetProfile("ann", today, &p));
    ASSERT_EQ(p.tier, want.tier) << "day " << day;
    shard.EvictClean(1);  // the ticker stays; ann goes again whenever she is clean
  }
}

// Regression: a user evicted while the day of her check was being swept (in
// slices, between batches) was registered for that day after the sweep had
// taken its list: her check never fired and her tier stayed stale.
void EvictedMidSweep(bool warm) {
  FakeUsers store;
  ShardState shard(0, Config{}, &store);
  ShardState reference(0, Config{});
  if (warm) shard.set_warm_memory(1 << 20);
  const int32_t day0 = DayOf(kDayStart, Config{}.utc_offset_ms);
  for (int u = 0; u < 100; ++u) Join(&shard, &reference, "u" + std::to_string(u), 0, day0);
  Persist(&shard, &store);
  // Day 30: every one of them is due; the sweep has done 10 when the
  // checkpoint after it evicts the others (clean: persisted, not changed).
  Event e;
  e.event_id = "tick";
  e.user_id = "ticker";
  e.type = EventType::kMessage;
  e.ts_ms = kDayStart + 30 * kMsPerDay;
  const int32_t today = DayOf(e.ts_ms, Config{}.utc_offset_ms);
  ASSERT_TRUE(shard.MarkSeen(e.event_id, 0, e.ts_ms));
  shard.Apply(e, today);
  reference.Apply(e, today);
  ASSERT_FALSE(shard.Sweep(today, 10));
  Persist(&shard, &store);
  shard.EvictClean(0);
  ASSERT_LE(shard.resident_users(), 11u);
  ASSERT_TRUE(shard.Sweep(today, SIZE_MAX));
  ASSERT_TRUE(reference.Sweep(today, SIZE_MAX));
  EXPECT_EQ(shard.Kpis(today).tiers, reference.Kpis(today).tiers);
  EXPECT_EQ(shard.Kpis(today).tiers[static_cast<size_t>(Tier::kDormant)], 100);
}
TEST(ShardStateEvicted, ChecksOfUsersEvictedWhileTheirDayIsSweptStillFire) {
  EvictedMidSweep(false);
}
TEST(ShardStateEvicted, ChecksOfWarmUsersEvictedWhileTheirDayIsSweptStillFire) {
  EvictedMidSweep(true);
}

// After a restart most users are only their pending checks (by hash): on
// their day the sweep finds them through the store's index and reloads them.
TEST(ShardStateEvicted, UsersLoadedOnlyAsChecksChangeTierOnTheirDay) {
  FakeUsers store;
  ShardState before(0, Config{}, &store);
  ShardState reference(0, Config{});
  const int32_t day0 = DayOf(kDayStart, Config{}.utc_offset_ms);
  for (int u = 0; u < 50; ++u) {
    Join(&before, &reference, "u" + std::to_string(u), u % 10, day0 + u % 10);
  }
  AdvanceTo(&before, &reference, 10);
  Persist(&before, &store);
  std::string meta;
  before.EncodeMeta(1, &meta);
  ShardState after(0, Config{}, &store);
  uint64_t seq;
  ASSERT_TRUE(after.DecodeMeta(meta, &seq).ok());
  for (const auto& [id, bytes] : store.users) {
    ASSERT_TRUE(after.LoadUser(id, bytes, id == "ticker").ok());
  }
  after.RebuildTimers();
  EXPECT_EQ(after.resident_users(), 1u);
  for (int day = 11; day <= 45; ++day) {
    const int32_t today = AdvanceTo(&after, &reference, day, 3);
    ASSERT_EQ(after.Kpis(today).tiers, reference.Kpis(today).tiers) << "day " << day;
  }
  EXPECT_EQ(store.hash_lookups, 50);  // once each, on her day
  EXPECT_EQ(after.Kpis(day0 + 45).tiers[static_cast<size_t>(Tier::kDormant)], 50);
}

// A checkpoint hands the store each user's hash the first time it persists
// her, and again after a checkpoint that failed.
TEST(ShardStateEvicted, UsersAreIndexedOnceByTheCheckpointThatFirstPersistsThem) {
  ShardState shard(0, Config{});
  ShardState reference(0, Config{});
  const int32_t day0 = DayOf(kDayStart, Config{}.utc_offset_ms);
  Join(&shard, &reference, "a", 0, day0);
  Join(&shard, &reference, "b", 0, day0);
  std::map<std::string, uint64_t> indexed;
  auto checkpoint = [&](bool ok) {
    indexed.clear();
    shard.BeginSnapshot(
        [](std::string_view, std::string_view) {},
        [&](uint64_t hash, std::string_view id) { indexed[std::string(id)] = hash; });
    EXPECT_TRUE(shard.SnapshotStep(SIZE_MAX));
    shard.CheckpointDone(ok, NewSeenIds{});
  };
  checkpoint(false);
  EXPECT_EQ(indexed.size(), 2u);
  checkpoint(true);  // the failed one's users again
  EXPECT_EQ(indexed.size(), 2u);
  EXPECT_EQ(indexed["a"], ShardState::UserHash("a"));
  Join(&shard, &reference, "c", 1, day0 + 1);
  Join(&shard, &reference, "a", 1, day0 + 1);  // changed, but indexed already
  checkpoint(true);
  EXPECT_EQ(indexed.size(), 1u);
  EXPECT_EQ(indexed.count("c"), 1u);
}

// A snapshot in slices: users changed before their turn are written as they
// were when it began (copy on write), each exactly once, and the change
// itself belongs to the next checkpoint.
TEST_F(ShardStateTest, SnapshotInSlicesIsExactAsOfItsBeginning) {
  for (int u = 0; u < 50; ++u) Send("u" + std::to_string(u), EventType::kMessage, kDayStart + u);
  for (int u = 0; u < 50; ++u) {
    Profile p;
    ASSERT_TRUE(shard_.GetProfile("u" + std::to_string(u), Today(), &p));
    EXPECT_EQ(p.interactions_7d, 1);
  }
  std::map<std::string, std::string> got;
  int writes = 0;
  shard_.BeginSnapshot([&](std::string_view id, std::string_view bytes) {
    ++writes;
    got[std::string(id)] = std::string(bytes);
  });
  EXPECT_FALSE(shard_.SnapshotStep(10));
  EXPECT_EQ(writes, 10);
  // Every user changes now, most of them before their turn.
  for (int u = 0; u < 50; ++u)
    Send("u" + std::to_string(u), EventType::kOrder, kDayStart + 100 + u);
  EXPECT_EQ(writes, 50);
  EXPECT_TRUE(shard_.SnapshotStep(SIZE_MAX));
  EXPECT_EQ(writes, 50);
  EXPECT_EQ(got.size(), 50u);
  for (const auto& [id, bytes] : got) {
    UserState s;
    ASSERT_TRUE(DecodeUserState(bytes, &s).ok()) << id;
    EXPECT_EQ(s.orders_total, 0u) << id;  // as of the snapshot's beginning
  }
  shard_.CheckpointDone(true, NewSeenIds{});
  EXPECT_EQ(shard_.dirty_count(), 50u);  // the orders are the next checkpoint's
  got.clear();
  shard_.DrainDirty([&](std::string_view id, std::string_view bytes) {
    got[std::string(id)] = std::string(bytes);
  });
  ASSERT_EQ(got.size(), 50u);
  for (const auto& [id, bytes] : got) {
    UserState s;
    ASSERT_TRUE(DecodeUserState(bytes, &s).ok()) << id;
    EXPECT_EQ(s.orders_total, 1u) << id;
  }
  // A failed write hands every user back, changed since or not.
  shard_.CheckpointDone(false, NewSeenIds{});
  EXPECT_EQ(shard_.dirty_count(), 50u);
}

}  // namespace
}  // namespace tierstream::state
