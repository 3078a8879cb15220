#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>

#include "common/hash.h"
#include "common/mutex.h"
#include "common/time.h"
#include "ingest/decoder.h"
#include "server/wire_json.h"
#include "state/shard_state.h"
#include "state/store.h"
#include "tests/test_util.h"

namespace tierstream::pipeline {
namespace {

using tierstream::testing::Reference;
using tierstream::testing::TempDir;

struct Totals {
  uint64_t accepted = 0, duplicates = 0, rejected = 0;
  bool failed = false;
};

// Feeds `lines` in batches of random sizes (several in flight at once) and
// waits until every batch is acknowledged.
Totals Feed(Pipeline& p, const std::vector<std::string>& lines, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Mutex mu;
  CondVar cv(&mu);
  Totals totals;
  size_t outstanding = 0;
  ingest::Decoder decoder;
  const size_t sizes[] = {1, 7, 100, 1000, 5000};
  for (size_t i = 0; i < lines.size();) {
    size_t n = sizes[rng() % 5];
    std::string text = tierstream::testing::Join(lines, i, i + n);
    ingest::PaddedBuffer buf(text.size());
    buf.Append(text);
    auto batch = p.NewBatch();
    BatchBuilder builder(batch.get(), nullptr, "test");
    decoder.DecodeLines(buf.view(), i + 1, &batch->arena, &builder);
    {
      MutexLock lock(&mu);
      ++outstanding;
    }
    p.WaitForCapacity();
    p.Submit(std::move(batch), [&](BatchOutcome o) {
      MutexLock lock(&mu);
      totals.accepted += o.accepted;
      totals.duplicates += o.duplicates;
      totals.rejected += o.rejected;
      totals.failed |= !o.status.ok();
      --outstanding;
      cv.SignalAll();
    });
    i += n;
  }
  MutexLock lock(&mu);
  while (outstanding != 0) cv.Wait();
  return totals;
}

// `horizon_days`: how long event ids are remembered. Streams that are
// shuffled or re-sent whole need it to cover their full span: the default
// (8 days) only promises SPEC §4's 7 days behind T.
std::unique_ptr<Pipeline> OpenAt(const std::string& dir, uint32_t shards, int32_t horizon_days = 8,
                                 size_t max_resident_users = 1 << 20) {
  PipelineOptions o;
  o.data_dir = dir;
  o.shards = shards;
  o.config.dedup_horizon_days = horizon_days;
  o.max_resident_users = max_resident_users;
  o.log_to_stderr = false;
  auto p = Pipeline::Open(o);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

// The answers as the API renders them: the oracle's diff reads JSON.
std::string KpisJson(Pipeline& p) { return server::RenderKpisJson(Await(p, &Pipeline::GetKpis)); }
// "" when the user is unknown.
std::string ProfileJson(Pipeline& p, const std::string& user_id) {
  const std::optional<ProfileReport> r = Await(p, &Pipeline::GetUser, user_id);
  return r ? server::RenderProfileJson(*r) : std::string();
}

std::vector<std::string> DiffAll(Pipeline& p, const Reference& ref, bool check_counters) {
  std::vector<std::string> diffs;
  for (const auto& [id, want] : ref.profiles) {
    const std::string body = ProfileJson(p, id);
    if (body.empty()) {
      diffs.push_back("missing user " + id);
      continue;
    }
    for (auto& d : tierstream::testing::DiffProfile(body, want)) diffs.push_back(d);
  }
  for (auto& d : tierstream::testing::DiffKpis(KpisJson(p), ref.kpis, check_counters)) {
    diffs.push_back("kpi " + d);
  }
  return diffs;
}

tools::GenOptions SmallStream(uint64_t seed) {
  tools::GenOptions g;
  g.users = 1500;
  g.days = 75;
  g.events = 30000;
  g.seed = seed;
  g.duplicate_rate = 0.03;
  g.disorder_rate = 0.05;
  g.invalid_rate = 0.01;
  return g;
}

TEST(Pipeline, MatchesTheBatchEvaluatorOnAGeneratedStream) {
  auto lines = tierstream::testing::GenerateLines(SmallStream(7));
  Reference ref = tierstream::testing::Evaluate(lines);
  ASSERT_GT(ref.profiles.size(), 1000u);
  ASSERT_GT(ref.kpis.events_duplicate, 0);
  ASSERT_GT(ref.kpis.events_rejected, 0);
  TempDir dir;
  auto p = OpenAt(dir.path(), 3);
  Totals t = Feed(*p, lines, 1);
  EXPECT_FALSE(t.failed);
  EXPECT_EQ(t.accepted, static_cast<uint64_t>(ref.kpis.events_accepted));
  EXPECT_EQ(t.duplicates, static_cast<uint64_t>(ref.kpis.events_duplicate));
  EXPECT_EQ(t.rejected, static_cast<uint64_t>(ref.kpis.events_rejected));
  if (t.accepted != static_cast<uint64_t>(ref.kpis.events_accepted)) ADD_FAILURE() << KpisJson(*p);
  auto diffs = DiffAll(*p, ref, true);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
}

TEST(Pipeline, ShuffledOrderAndBatchSizesGiveIdenticalProfilesAndKpis) {
  auto lines = tierstream::testing::GenerateLines(SmallStream(11));
  Reference ref = tierstream::testing::Evaluate(lines);
  std::vector<std::string> shuffled = lines;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(99));
  TempDir a, b;
  auto pa = OpenAt(a.path(), 2, 3650);
  auto pb = OpenAt(b.path(), 5, 3650);
  Feed(*pa, lines, 2);
  Feed(*pb, shuffled, 3);
  for (const auto& [id, want] : ref.profiles) {
    const std::string ja = ProfileJson(*pa, id);
    ASSERT_FALSE(ja.empty()) << id;
    ASSERT_EQ(ja, ProfileJson(*pb, id));
  }
  EXPECT_EQ(KpisJson(*pa), KpisJson(*pb));
  auto diffs = DiffAll(*pb, ref, true);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
}

TEST(Pipeline, DuplicatesAreRecognisedAcrossBatchesAndRestarts) {
  auto lines = tierstream::testing::GenerateLines(SmallStream(5));
  Reference ref = tierstream::testing::Evaluate(lines);
  TempDir dir;
  std::string kpis_before;
  {
    auto p = OpenAt(dir.path(), 2, 3650);
    Feed(*p, lines, 4);
    Totals again = Feed(*p, lines, 5);  // every valid line again, in other batches
    EXPECT_EQ(again.accepted, 0u);
    kpis_before = KpisJson(*p);
    ASSERT_TRUE(p->Close().ok());
  }
  auto p = OpenAt(dir.path(), 0, 3650);  // the data dir remembers its shard count
  EXPECT_EQ(p->shards(), 2u);
  EXPECT_EQ(KpisJson(*p), kpis_before);
  Totals after_restart = Feed(*p, lines, 6);
  EXPECT_EQ(after_restart.accepted, 0u);
  EXPECT_EQ(after_restart.duplicates,
            static_cast<uint64_t>(ref.kpis.events_accepted + ref.kpis.events_duplicate));
  auto diffs = DiffAll(*p, ref, false);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
}

TEST(Pipeline, DuplicatesAreRecognisedWhenTheirIdsSpillToDisk) {
  auto lines = tierstream::testing::GenerateLines(SmallStream(17));
  Reference ref = tierstream::testing::Evaluate(lines);
  TempDir dir;
  PipelineOptions o;
  o.data_dir = dir.path();
  o.shards = 2;
  o.config.dedup_horizon_days = 3650;
  o.dedup_memory_bytes = 1;  // the floor: 1024 ids per shard in memory
  o.checkpoint_interval_ms = 1;
  o.log_to_stderr = false;
  std::string kpis_before;
  {
    auto p = std::move(Pipeline::Open(o)).value();
    Totals first = Feed(*p, lines, 4);
    EXPECT_EQ(first.accepted, static_cast<uint64_t>(ref.kpis.events_accepted));
    Totals again = Feed(*p, lines, 5);
    EXPECT_EQ(again.accepted, 0u);
    kpis_before = KpisJson(*p);
    ASSERT_TRUE(p->Close().ok());
  }
  auto p = std::move(Pipeline::Open(o)).value();
  EXPECT_EQ(KpisJson(*p), kpis_before);
  // Spills run beside checkpoints (how many depends on timing); the final
  // checkpoint made every one durable: at least one per shard.
  PipelineStats stats = Await(*p, &Pipeline::GetStats);
  EXPECT_GE(stats.id_runs, 2u);
  EXPECT_GT(stats.spilled_ids, stats.remembered_ids / 2);
  Totals after_restart = Feed(*p, lines, 6);
  EXPECT_EQ(after_restart.accepted, 0u);
  EXPECT_EQ(after_restart.duplicates,
            static_cast<uint64_t>(ref.kpis.events_accepted + ref.kpis.events_duplicate));
  auto diffs = DiffAll(*p, ref, false);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
}

// Event ids are remembered for both horizons, the wall clock's measured by
// the injected clock: a backfill re-sent the same day counts nothing, even
// after a restart; once the wall clock is past the horizon too, an event
// older than the event-time horizon is accepted again — and counted in
// events_beyond_horizon, so an operator can see it happened.
TEST(Pipeline, IdsAreForgottenOnlyPastBothHorizonsByTheInjectedWallClock) {
  auto lines = tierstream::testing::GenerateLines(SmallStream(23));  // 75 days
  Reference ref = tierstream::testing::Evaluate(lines);
  TempDir dir;
  auto wall = std::make_shared<std::atomic<int64_t>>(1'800'000'000'000);
  PipelineOptions o;
  o.data_dir = dir.path();
  o.shards = 2;
  o.log_to_stderr = false;
  o.config.max_future_ms = 0;  // the injected clock is not the events' time
  o.wall_clock = [wall] { return wall->load(); };
  {
    auto p = std::move(Pipeline::Open(o)).value();
    EXPECT_EQ(Feed(*p, lines, 1).accepted, static_cast<uint64_t>(ref.kpis.events_accepted));
    *wall += 8 * kMsPerDay - 60'000;  // a minute short of the horizon
    EXPECT_EQ(Feed(*p, lines, 2).accepted, 0u);
    ASSERT_TRUE(p->Close().ok());
  }
  auto p = std::move(Pipeline::Open(o)).value();
  EXPECT_EQ(Feed(*p, lines, 3).accepted, 0u);
  EXPECT_EQ(Await(*p, &Pipeline::GetStats).events_beyond_horizon, 0u);
  // Past both horizons: the oldest part of the stream (arrived more than 8
  // days of event time before T) is forgotten; the newest is not.
  *wall += 120'000;
  const Totals again = Feed(*p, lines, 4);
  EXPECT_GT(again.accepted, 0u);
  EXPECT_LT(again.accepted, static_cast<uint64_t>(ref.kpis.events_accepted));
  const PipelineStats stats = Await(*p, &Pipeline::GetStats);
  EXPECT_GT(stats.events_beyond_horizon, 0u);
  EXPECT_LE(stats.events_beyond_horizon, again.accepted);
}

TEST(Pipeline, ReferralCreditReachesAReferrerInAnotherShard) {
  TempDir dir;
  auto p = OpenAt(dir.path(), 4);
  // Find a referrer owned by another shard than the joining member.
  std::string member = "m1", referrer;
  for (int i = 0; referrer.empty(); ++i) {
    std::string r = "r" + std::to_string(i);
    if (ShardOf(r, 4) != ShardOf(member, 4)) referrer = r;
  }
  std::vector<std::string> lines = {
      R"({"event_id":"j1","type":"join","user_id":"m1","ts":1763971200000,"referrer_id":")" +
          referrer + R"("})",
      R"({"event_id":"j2","type":"join","user_id":"m2","ts":1763971200001,"referrer_id":"m2"})",
  };
  Totals t = Feed(*p, lines, 1);
  EXPECT_EQ(t.accepted, 2u);
  Reference ref = tierstream::testing::Evaluate(lines);
  ASSERT_EQ(ref.profiles.count(referrer), 1u);
  EXPECT_EQ(ref.profiles[referrer].referrals, 1);
  EXPECT_EQ(ref.profiles[referrer].points, 10);
  auto diffs = DiffAll(*p, ref, true);
  EXPECT_TRUE(diffs.empty()) << diffs[0];
  const std::optional<ProfileReport> r = Await(*p, &Pipeline::GetUser, referrer);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->profile.referrals, 1);
  const std::optional<ProfileReport> m2 = Await(*p, &Pipeline::GetUser, std::string("m2"));
  ASSERT_TRUE(m2.has_value());
  EXPECT_EQ(m2->profile.referrals, 0) << "self-referral credits nothing";
}

TEST(Pipeline, StaysExactWhenUsersOutnumberTheMemoryBound) {
  auto lines = tierstream::testing::GenerateLines(SmallStream(13));
  Reference ref = tierstream::testing::Evaluate(lines);
  TempDir dir;
  {
    // 150 resident users for 1500: most are evicted and reloaded, many times.
    auto p = OpenAt(dir.path(), 3, 8, 150);
    Feed(*p, lines, 8);
    PipelineStats stats = Await(*p, &Pipeline::GetStats);
    EXPECT_GT(stats.reloads, 1000u);
    auto diffs = DiffAll(*p, ref, true);
    EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
    ASSERT_TRUE(p->Close().ok());
  }
  // After a restart only some users are loaded; the rest come back on demand.
  auto p = OpenAt(dir.path(), 3, 8, 150);
  EXPECT_EQ(p->recovery().users_loaded, ref.profiles.size());
  EXPECT_LE(Await(*p, &Pipeline::GetStats).resident_users, 150u);
  auto diffs = DiffAll(*p, ref, true);
  EXPECT_GT(Await(*p, &Pipeline::GetStats).reloads, 0u);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
}

// Members who join on `day` (days after 2025-11-24) and do nothing else:
// each has one pending tier check, 30 days on (she turns dormant).
std::vector<std::string> JoinLines(int first, int count, int day) {
  std::vector<std::string> lines;
  for (int u = first; u < first + count; ++u) {
    lines.push_back(R"({"event_id":"join)" + std::to_string(u) + R"(","type":"join","user_id":"u)" +
                    std::to_string(u) + R"(","ts":)" +
                    std::to_string(1763913600000 + int64_t{day} * 86'400'000 + u) + "}");
  }
  return lines;
}
int64_t Dormant(Pipeline& p) {
  return Await(p, &Pipeline::GetKpis).kpis.tiers[static_cast<size_t>(state::Tier::kDormant)];
}
std::string TickLine(int day) {
  return R"({"event_id":"tick)" + std::to_string(day) +
         R"(","type":"message","user_id":"ticker","ts":)" +
         std::to_string(1763913600000 + int64_t{day} * 86'400'000) + "}";
}

// Pending tier checks of evicted users are kept by hash, and the store's
// user index finds them by it. A data dir from before the index (users and
// shard metas only, as older binaries wrote them) gets it at its next start,
// and checkpoints keep it current: users evicted at a restart change tier on
// their day, whether they came from before the index or after it.
TEST(Pipeline, EvictedUsersChangeTierOnTheirDayInADataDirFromBeforeTheUserIndex) {
  TempDir dir;
  std::vector<std::string> lines = JoinLines(0, 300, 0);
  {
    // What an older binary left: 300 users and the shard meta, no index.
    state::ShardState shard(0, state::Config{});
    ingest::Decoder decoder;
    Arena arena;
    struct Sink : ingest::DecodeSink {
      std::vector<ingest::Event> events;
      void OnEvent(const ingest::Event& e) override { events.push_back(e); }
      void OnReject(uint64_t, std::string_view, std::string_view) override {}
    } sink;
    const std::string text = tierstream::testing::Join(lines, 0, lines.size());
    ingest::PaddedBuffer buf(text.size());
    buf.Append(text);
    decoder.DecodeLines(buf.view(), 1, &arena, &sink);
    ASSERT_EQ(sink.events.size(), 300u);
    int32_t today = kNoDay;
    for (const ingest::Event& e : sink.events) {
      today = std::max(today, DayOf(e.ts_ms, state::Config{}.utc_offset_ms));
      ASSERT_TRUE(shard.MarkSeen(e.event_id, 0, e.ts_ms));
      shard.Apply(e, today);
    }
    ASSERT_TRUE(shard.Sweep(today, SIZE_MAX));
    auto store = state::Store::Open(dir.path() + "/db", state::StoreOptions{});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    state::Store::Checkpoint cp(store->get());
    shard.DrainDirty(
        [&](std::string_view id, std::string_view bytes) { cp.PutUser(0, id, bytes); });
    shard.CheckpointDone(true, state::NewSeenIds{});
    std::string meta;
    shard.EncodeMeta(0, &meta);
    cp.PutMeta("shard/0", meta);
    ASSERT_TRUE((*store)->Commit(&cp, true).ok());
    ASSERT_TRUE((*store)->PutMeta("shards", "1", true).ok());
  }
  auto check = [&](Pipeline& p, const char* when) {
    auto diffs = DiffAll(p, tierstream::testing::Evaluate(lines), true);
    EXPECT_TRUE(diffs.empty()) << when << ": " << diffs.size()
                               << " differences, first: " << diffs[0];
  };
  {
    // 16 stay resident: 284 are only their pending checks.
    auto p = OpenAt(dir.path(), 1, 8, 16);
    EXPECT_EQ(p->recovery().users_loaded, 300u);
    lines.push_back(TickLine(31));  // every one of them turns dormant
    Feed(*p, {lines.back()}, 1);
    EXPECT_EQ(Dormant(*p), 300);
    check(*p, "day 31, after the index was built");
    // Users new since the index: indexed by the checkpoints that persist them.
    const auto joins = JoinLines(1000, 100, 32);
    lines.insert(lines.end(), joins.begin(), joins.end());
    Feed(*p, joins, 2);
    ASSERT_TRUE(p->Close().ok());
  }
  auto p = OpenAt(dir.path(), 1, 8, 16);
  lines.push_back(TickLine(62));
  Feed(*p, {lines.back()}, 3);
  EXPECT_EQ(Dormant(*p), 400);
  check(*p, "day 62, after a restart");
}

TEST(Pipeline, ReevaluatesEveryTierWhenTheRulesChange) {
  auto lines = tierstream::testing::GenerateLines(SmallStream(17));
  TempDir dir;
  {
    auto p = OpenAt(dir.path(), 2, 8, 200);
    Feed(*p, lines, 9);
    ASSERT_TRUE(p->Close().ok());
  }
  PipelineOptions o;
  o.data_dir = dir.path();
  o.log_to_stderr = false;
  o.max_resident_users = 200;  // most users are re-tiered in the store
  o.config.rules.new_days = 60;
  o.config.rules.active_interactions_7d = 2;
  auto p = Pipeline::Open(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  verify::Thresholds t;
  t.new_days = 60;
  t.active_interactions_7d = 2;
  Reference ref = tierstream::testing::Evaluate(lines, t);
  auto diffs = DiffAll(**p, ref, true);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
  std::string body = KpisJson(**p);
  EXPECT_EQ(
      tierstream::testing::DiffKpis(body, tierstream::testing::Evaluate(lines).kpis, true).empty(),
      false)
      << "the new rules must change some tier counts";
}

// Histories for the explain test: ~300 users over the 60 days up to
// 2025-11-24 (+08:00), every ts before 23:00 of that day.
class Histories {
 public:
  static constexpr int64_t kDay0 = 1763913600000;  // 2025-11-24T00:00:00+08:00
  static constexpr int64_t kEnd = kDay0 + 23 * 3'600'000;

  explicit Histories(uint64_t seed) : rng_(seed) {}

  // An event of `user` `days_ago` days before 2025-11-24, at a random time
  // of that day (before 23:00).
  void Add(const std::string& type, const std::string& user, int days_ago,
           const std::string& extra = "") {
    const int64_t ts =
        kDay0 - int64_t{days_ago} * kMsPerDay + static_cast<int64_t>(rng_() % (23 * 3'600'000));
    lines.push_back(R"({"event_id":"h)" + std::to_string(lines.size()) + R"(","type":")" + type +
                    R"(","user_id":")" + user + R"(","ts":)" + std::to_string(ts) + extra + "}");
  }
  void Order(const std::string& user, int days_ago, int64_t fen, const char* type = "order") {
    char amount[32];
    std::snprintf(amount, sizeof amount, "%lld.%02lld", static_cast<long long>(fen / 100),
                  static_cast<long long>(fen % 100));
    Add(type, user, days_ago,
        R"(,"order_id":"o)" + std::to_string(lines.size()) + R"(","amount":)" + amount);
  }
  void Interactions(const std::string& user, int n, int oldest_days_ago) {
    static const char* kTypes[] = {"message", "reaction", "checkin", "share"};
    for (int i = 0; i < n; ++i) Add(kTypes[rng_() % 4], user, Uniform(0, oldest_days_ago));
  }
  int Uniform(int lo, int hi) { return lo + static_cast<int>(rng_() % (hi - lo + 1)); }

  std::vector<std::string> lines;

 private:
  std::mt19937_64 rng_;
};

// Explain's promise, end to end: with no event of hers, a user still has
// her tier at T = next_change.at - 1 and has next_change.tier at T = at.
// 300 users with varied histories; T then moves only by the messages of a
// "clock" user, through every predicted at - 1 and at in order; at each
// step every user's profile (GetUser) is checked against her prediction,
// and a user whose change came is explained again, until no change is left
// (each has at most a handful: windows empty within 30 days of her last
// event). Users are evicted (48 resident of ~350): explanations and
// profiles read them back from the store. At every step the KPIs' tier
// counts (the sweep's, by timers) must agree with the profiles too.
TEST(Pipeline, ExplainedTierChangesHappenExactlyAtTheirPredictedTime) {
  Histories h(2025);
  std::vector<std::string> users;
  for (int i = 0; i < 300; ++i) {
    const std::string u = "u" + std::to_string(i);
    users.push_back(u);
    switch (i % 8) {
      case 0:  // a random mix
        h.Add("join", u, h.Uniform(0, 60));
        h.Interactions(u, h.Uniform(0, 8), 12);
        for (int k = h.Uniform(0, 5); k > 0; --k) h.Order(u, h.Uniform(0, 35), h.Uniform(1, 30000));
        if (h.Uniform(0, 3) == 0) h.Order(u, h.Uniform(0, 35), h.Uniform(1, 20000), "refund");
        break;
      case 1:  // high_value until her orders leave the 30-day window
        h.Add("join", u, h.Uniform(31, 60));
        for (int k = h.Uniform(4, 6); k > 0; --k)
          h.Order(u, h.Uniform(0, 29), h.Uniform(15000, 25000));
        h.Interactions(u, h.Uniform(0, 4), 9);
        break;
      case 2:  // high_value once her refund leaves the 30-day window
        h.Add("join", u, 60);
        h.Order(u, h.Uniform(20, 29), h.Uniform(10000, 20000), "refund");
        for (int k = 0; k < 4; ++k) h.Order(u, h.Uniform(0, 15), 14000);
        break;
      case 3:  // new
        h.Add("join", u, h.Uniform(0, 29));
        h.Interactions(u, h.Uniform(0, 6), 8);
        break;
      case 4:  // left (some came back and left again)
        h.Add("join", u, h.Uniform(20, 60));
        h.Interactions(u, h.Uniform(0, 4), 9);
        if (h.Uniform(0, 1) == 0) {
          h.Add("leave", u, 19);
          h.Add("join", u, h.Uniform(10, 18));
        }
        h.Add("leave", u, h.Uniform(0, 9));
        break;
      case 5:  // no join: joined_at is her first event
        h.Add("message", u, h.Uniform(0, 50));
        h.Interactions(u, h.Uniform(0, 5), 10);
        break;
      case 6:  // active, then regular, then dormant
        h.Add("join", u, h.Uniform(30, 60));
        h.Interactions(u, h.Uniform(3, 9), 6);
        break;
      case 7: {  // names a referrer: a profile with no event of her own
        const std::string r = "r" + std::to_string(i);
        users.push_back(r);
        h.Add("join", u, h.Uniform(0, 40), R"(,"referrer_id":")" + r + "\"");
        h.Interactions(u, h.Uniform(0, 3), 7);
        break;
      }
    }
  }
  users.push_back("clock");

  TempDir dir;
  PipelineOptions o;
  o.data_dir = dir.path();
  o.shards = 3;
  o.max_resident_users = 48;  // 16 a shard
  o.checkpoint_interval_ms = 20;
  o.config.max_future_ms = 0;
  o.log_to_stderr = false;
  auto opened = Pipeline::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Pipeline& p = **opened;
  ASSERT_EQ(Feed(p, h.lines, 5).accepted, h.lines.size());

  int64_t t = kNoTs;
  auto tick = [&](int64_t ts) {
    if (ts <= t) return;
    t = ts;
    const std::string line = R"({"event_id":"clock)" + std::to_string(ts) +
                             R"(","type":"message","user_id":"clock","ts":)" + std::to_string(ts) +
                             "}";
    ASSERT_EQ(Feed(p, {line}, 1).accepted, 1u);
    ASSERT_EQ(p.watermark(), ts);
  };
  tick(Histories::kEnd);

  struct Prediction {
    state::Tier tier = state::Tier::kNone;
    std::optional<state::NextChange> next;
  };
  std::map<std::string, Prediction> predicted;
  std::map<state::NextChangeCause, int> causes;
  int changes = 0, never = 0;
  auto explain = [&](const std::string& u) {
    const std::optional<ExplainReport> x = Await(p, &Pipeline::ExplainUser, u);
    ASSERT_TRUE(x.has_value()) << u;
    ASSERT_TRUE(x->status.ok()) << x->status.ToString();
    EXPECT_EQ(x->as_of, t);
    EXPECT_EQ(x->user_id, u);
    Prediction& pr = predicted[u];
    pr.tier = x->explanation.tier;
    pr.next = x->explanation.next_change;
    if (pr.next) {
      EXPECT_GT(pr.next->at, t) << u;
      ++changes;
      ++causes[pr.next->cause];
    } else {
      ++never;
    }
  };
  auto tier_of = [&](const std::string& u) {
    const std::optional<ProfileReport> r = Await(p, &Pipeline::GetUser, u);
    EXPECT_TRUE(r.has_value() && r->status.ok()) << u;
    return r ? r->profile.tier : state::Tier::kNone;
  };
  // Every user as predicted; the sweep's tier counts agree with profiles.
  auto check_all = [&](const char* when) {
    std::array<int64_t, state::kTierCount> counts{};
    for (const std::string& u : users) {
      const state::Tier tier = tier_of(u);
      ++counts[static_cast<size_t>(tier)];
      if (u == "clock") continue;
      const Prediction& pr = predicted.at(u);
      if (pr.next && t >= pr.next->at) {
        ASSERT_EQ(t, pr.next->at) << u << " was not checked at her change";
        ASSERT_EQ(state::TierName(tier), state::TierName(pr.next->tier))
            << u << " at " << when << " T=" << t << ": " << pr.next->because;
      } else {
        ASSERT_EQ(state::TierName(tier), state::TierName(pr.tier))
            << u << " at " << when << " T=" << t;
      }
    }
    EXPECT_EQ(Await(p, &Pipeline::GetKpis).kpis.tiers, counts) << when << " T=" << t;
  };

  for (const std::string& u : users) {
    if (u != "clock") explain(u);
  }
  check_all("start");
  int steps = 0;
  for (;;) {
    int64_t next_at = INT64_MAX;
    for (const auto& [u, pr] : predicted) {
      if (pr.next) next_at = std::min(next_at, pr.next->at);
    }
    if (next_at == INT64_MAX) break;
    ASSERT_LT(++steps, 200) << "changes must run out";
    tick(next_at - 1);
    check_all("at - 1");
    tick(next_at);
    check_all("at");
    for (const auto& [u, pr] : predicted) {
      if (pr.next && pr.next->at == next_at) {
        const state::Tier came = pr.next->tier;
        explain(u);
        EXPECT_EQ(predicted.at(u).tier, came) << u;
      }
    }
  }
  // Not vacuous: many changes, of every kind, and users read back from the
  // store.
  EXPECT_GE(steps, 25);
  EXPECT_GT(changes, 300);
  EXPECT_EQ(never, static_cast<int>(users.size()) - 1) << "every chain ends";
  for (auto cause :
       {state::NextChangeCause::kNewEnds, state::NextChangeCause::kOrdersLeave,
        state::NextChangeCause::kRefundsLeave, state::NextChangeCause::kInteractionsLeave,
        state::NextChangeCause::kLastInteractionsLeave}) {
    EXPECT_GT(causes[cause], 20) << static_cast<int>(cause);
  }
  EXPECT_GT(Await(p, &Pipeline::GetStats).reloads, 100u);
  ASSERT_TRUE(p.Close().ok());
}

TEST(Pipeline, RefusesToReopenInAnotherTimeZone) {
  TempDir dir;
  { auto p = OpenAt(dir.path(), 2); }
  PipelineOptions o;
  o.data_dir = dir.path();
  o.log_to_stderr = false;
  o.config.utc_offset_ms = 0;
  auto p = Pipeline::Open(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--tz +08:00"), std::string_view::npos);
}

TEST(Pipeline, RefusesToReopenWithAnotherShardCount) {
  TempDir dir;
  { auto p = OpenAt(dir.path(), 2); }
  PipelineOptions o;
  o.data_dir = dir.path();
  o.shards = 3;
  o.log_to_stderr = false;
  auto p = Pipeline::Open(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--shards 2"), std::string_view::npos);
}

// The Kafka mode answers for the shards it owns: all of them here.
void ClaimEveryShard(Pipeline& p) {
  for (uint32_t s = 0; s < p.shards(); ++s) {
    ASSERT_TRUE(p.ClaimShard(
                     s, 1, [](const ShardMark&, state::Store*) { return false; },
                     [](std::vector<std::string>, const ShardMark&) { return Status::Ok(); })
                    .ok());
  }
}

// The Kafka mode's placement: shard i is Kafka partition i. Events and
// queries must both route by it (a query routed by the other placement
// finds nobody), and results stay exact.
TEST(Pipeline, KafkaPlacementRoutesEventsAndQueriesAlikeAndStaysExact) {
  auto lines = tierstream::testing::GenerateLines(SmallStream(21));
  TempDir dir;
  PipelineOptions o;
  o.data_dir = dir.path();
  o.shards = 12;
  o.placement = Placement::kKafka;
  o.log_to_stderr = false;
  {
    auto p = Pipeline::Open(o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ClaimEveryShard(**p);
    Totals t = Feed(**p, lines, 5);
    EXPECT_FALSE(t.failed);
    auto diffs = DiffAll(**p, tierstream::testing::Evaluate(lines), true);
    EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
    ASSERT_TRUE((*p)->Close().ok());
  }
  // Reopened: the same users on the same shards.
  auto p = Pipeline::Open(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ClaimEveryShard(**p);
  auto diffs = DiffAll(**p, tierstream::testing::Evaluate(lines), true);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
}

TEST(Pipeline, RefusesToReopenWithTheOtherPlacement) {
  TempDir journal, kafka;
  { auto p = OpenAt(journal.path(), 2); }
  PipelineOptions o;
  o.data_dir = journal.path();
  o.placement = Placement::kKafka;
  o.log_to_stderr = false;
  auto p = Pipeline::Open(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("without --kafka"), std::string_view::npos)
      << p.status().ToString();
  o.data_dir = kafka.path();
  o.shards = 4;
  { ASSERT_TRUE(Pipeline::Open(o).ok()); }
  o.placement = Placement::kHash64;
  p = Pipeline::Open(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("with --kafka"), std::string_view::npos)
      << p.status().ToString();
}

}  // namespace
}  // namespace tierstream::pipeline
