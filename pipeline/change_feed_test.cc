// The change feed through the pipeline: changes by event and by time with
// their causes and exact times, the per-user chain, a restart, retention.
#include "pipeline/change_feed.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/time.h"
#include "ingest/decoder.h"
#include "pipeline/batch.h"
#include "pipeline/pipeline.h"
#include "tests/test_util.h"

namespace tierstream::pipeline {
namespace {

using tierstream::testing::TempDir;

constexpr int64_t kOffset = 8 * 3'600'000;  // the default +08:00
constexpr int32_t kDay0 = 20'000;           // 2024-10-04

int64_t At(int32_t day, int hour) { return DayStartMs(day, kOffset) + hour * 3'600'000LL; }

std::string Line(const std::string& id, const std::string& type, const std::string& user,
                 int64_t ts) {
  return "{\"event_id\":\"" + id + "\",\"type\":\"" + type + "\",\"user_id\":\"" + user +
         "\",\"ts\":" + std::to_string(ts) + "}";
}

// Submits `lines` as one batch and waits for its answer.
void Send(Pipeline& p, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  ingest::PaddedBuffer buf(text.size());
  buf.Append(text);
  auto batch = p.NewBatch();
  BatchBuilder builder(batch.get(), nullptr, "test");
  ingest::Decoder decoder;
  decoder.DecodeLines(buf.view(), 1, &batch->arena, &builder);
  Mutex mu;
  CondVar cv(&mu);
  bool done = false;
  p.Submit(std::move(batch), [&](BatchOutcome o) {
    EXPECT_TRUE(o.status.ok()) << o.status.ToString();
    MutexLock lock(&mu);
    done = true;
    cv.SignalAll();
  });
  MutexLock lock(&mu);
  while (!done) cv.Wait();
}

std::unique_ptr<Pipeline> Open(const std::string& dir, int retention_ms = 10'000,
                               std::function<int64_t()> wall = nullptr,
                               state::ChangeLogConfig changes = {}) {
  PipelineOptions o;
  o.data_dir = dir;
  o.shards = 2;
  o.log_to_stderr = false;
  o.config.max_future_ms = 0;  // event times in 2024
  o.config.changes = changes;
  o.retention_interval_ms = retention_ms;
  o.wall_clock = std::move(wall);
  auto p = Pipeline::Open(o);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

// Every change of `user`, once at least `want` of them are durable (they
// are written after the acks of their events, and the sweep's between
// groups, shortly after T moved).
std::vector<state::TierChange> ChangesOf(Pipeline& p, const std::string& user, size_t want) {
  std::vector<state::TierChange> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    out.clear();
    (void)Await(p, &Pipeline::GetKpis);  // sweeps every shard as of T
    ChangePage page = p.ReadChanges(0, 100000, ChangeFilter{});
    EXPECT_TRUE(page.status.ok());
    for (auto& [cursor, c] : page.changes) {
      if (c.user_id == user) out.push_back(c);
    }
    if (out.size() >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return out;
}

TEST(ChangeFeed, TimeOnlyTransitionsComeWithCauseTimeAtTheStartOfTheirDay) {
  TempDir dir;
  auto p = Open(dir.path());
  // a: joins on day 0 and says nothing more: new, then dormant on day 30.
  // c: joins on day 0, three messages on day 31 (active), then quiet:
  // dormant on day 38, when they leave the 7-day window.
  Send(*p, {Line("a1", "join", "a", At(kDay0, 10)), Line("c1", "join", "c", At(kDay0, 11))});
  Send(*p, {Line("z1", "message", "z", At(kDay0 + 29, 23))});
  Send(*p, {Line("z2", "message", "z", At(kDay0 + 30, 1))});  // T crosses into day 30
  // The sweep runs between groups: let it reach c before her own events do
  // (an event of hers first would re-evaluate her itself, cause: event).
  ASSERT_EQ(ChangesOf(*p, "c", 2).size(), 2u);
  Send(*p, {Line("c2", "message", "c", At(kDay0 + 31, 9)),
            Line("c3", "message", "c", At(kDay0 + 31, 10)),
            Line("c4", "message", "c", At(kDay0 + 31, 11))});
  Send(*p, {Line("z3", "message", "z", At(kDay0 + 37, 23))});
  Send(*p, {Line("z4", "message", "z", At(kDay0 + 38, 0))});  // day 38: c's messages leave

  const auto a = ChangesOf(*p, "a", 2);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].from, state::Tier::kNone);
  EXPECT_EQ(a[0].to, state::Tier::kNew);
  EXPECT_EQ(a[0].cause, state::ChangeCause::kEvent);
  EXPECT_EQ(a[0].cause_ref, "a1");
  EXPECT_EQ(a[1].from, state::Tier::kNew);
  EXPECT_EQ(a[1].to, state::Tier::kDormant);
  EXPECT_EQ(a[1].cause, state::ChangeCause::kTime);
  EXPECT_EQ(a[1].at_ms, DayStartMs(kDay0 + 30, kOffset));
  EXPECT_EQ(a[1].seq, 2u);

  const auto c = ChangesOf(*p, "c", 5);
  ASSERT_GE(c.size(), 4u);
  // new -> dormant (time, day 30), then by her messages up to active, then
  // dormant by time on day 38.
  EXPECT_EQ(c[1].cause, state::ChangeCause::kTime);
  EXPECT_EQ(c[1].to, state::Tier::kDormant);
  EXPECT_EQ(c[1].at_ms, DayStartMs(kDay0 + 30, kOffset));
  EXPECT_EQ(c[c.size() - 2].to, state::Tier::kActive);
  EXPECT_EQ(c[c.size() - 2].cause, state::ChangeCause::kEvent);
  EXPECT_EQ(c.back().from, state::Tier::kActive);
  EXPECT_EQ(c.back().to, state::Tier::kDormant);
  EXPECT_EQ(c.back().cause, state::ChangeCause::kTime);
  EXPECT_EQ(c.back().at_ms, DayStartMs(kDay0 + 38, kOffset));
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c[i].seq, i + 1);
    if (i > 0) {
      EXPECT_EQ(c[i].from, c[i - 1].to) << i;
    }
  }
  // Her last change is her tier.
  const auto profile = Await(*p, &Pipeline::GetUser, std::string("c"));
  ASSERT_TRUE(profile.has_value());
  EXPECT_EQ(profile->profile.tier, c.back().to);
}

TEST(ChangeFeed, ARestartKeepsTheFeedAndGoesOnNumbering) {
  TempDir dir;
  std::vector<std::pair<uint64_t, std::string>> before;
  {
    auto p = Open(dir.path());
    Send(*p, {Line("a1", "join", "a", At(kDay0, 10)), Line("b1", "join", "b", At(kDay0, 10))});
    Send(*p, {Line("z1", "message", "z", At(kDay0 + 30, 1))});
    ASSERT_EQ(ChangesOf(*p, "a", 2).size(), 2u);
    ASSERT_EQ(ChangesOf(*p, "b", 2).size(), 2u);
    ASSERT_EQ(ChangesOf(*p, "z", 1).size(), 1u);
    for (auto& [cursor, c] : p->ReadChanges(0, 1000, ChangeFilter{}).changes) {
      before.emplace_back(cursor, c.user_id + ":" + std::string(state::TierName(c.to)));
    }
    ASSERT_TRUE(p->Close().ok());
  }
  auto p = Open(dir.path());
  ChangePage page = p->ReadChanges(0, 1000, ChangeFilter{});
  ASSERT_EQ(page.changes.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(page.changes[i].first, before[i].first);
    EXPECT_EQ(page.changes[i].second.user_id + ":" +
                  std::string(state::TierName(page.changes[i].second.to)),
              before[i].second);
  }
  const uint64_t end = p->ChangesEnd();
  Send(*p, {Line("a2", "message", "a", At(kDay0 + 30, 2))});
  const auto a = ChangesOf(*p, "a", 3);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[2].seq, 3u);
  EXPECT_EQ(a[2].from, state::Tier::kDormant);
  EXPECT_GT(p->ChangesEnd(), end);
}

TEST(ChangeFeed, FiltersPassOverOtherChangesAndNextResumesPastThem) {
  TempDir dir;
  auto p = Open(dir.path());
  Send(*p, {Line("a1", "join", "a", At(kDay0, 10)), Line("b1", "join", "b", At(kDay0, 10))});
  Send(*p, {Line("z1", "message", "z", At(kDay0 + 30, 1))});
  ASSERT_EQ(ChangesOf(*p, "a", 2).size(), 2u);
  ASSERT_EQ(ChangesOf(*p, "b", 2).size(), 2u);
  ASSERT_EQ(ChangesOf(*p, "z", 1).size(), 1u);
  ChangeFilter dormant;
  dormant.to = 1u << static_cast<int>(state::Tier::kDormant);
  ChangePage page = p->ReadChanges(0, 1000, dormant);
  ASSERT_EQ(page.changes.size(), 2u);  // a and b leave new
  for (auto& [cursor, c] : page.changes) EXPECT_EQ(c.to, state::Tier::kDormant);
  EXPECT_EQ(page.next, p->ChangesEnd());
  ChangeFilter first;
  first.from = 1u << static_cast<int>(state::Tier::kNone);
  EXPECT_EQ(p->ReadChanges(0, 1000, first).changes.size(), 3u);  // a, b, z
  EXPECT_TRUE(p->ReadChanges(p->ChangesEnd(), 1000, ChangeFilter{}).changes.empty());
}

TEST(ChangeFeed, RetentionTrimsTheOldestAndOlderCursorsAreGone) {
  TempDir dir;
  std::atomic<int64_t> wall{At(kDay0, 0)};
  state::ChangeLogConfig keep;
  keep.retain_days = 5;
  keep.retain_wall_ms = 3'600'000;  // an hour
  auto p = Open(
      dir.path(), 10, [&] { return wall.load(); }, keep);
  Send(*p, {Line("a1", "join", "a", At(kDay0, 10))});
  Send(*p, {Line("b1", "join", "b", At(kDay0 + 2, 10))});
  ASSERT_EQ(ChangesOf(*p, "a", 1).size(), 1u);
  ASSERT_EQ(ChangesOf(*p, "b", 1).size(), 1u);
  const uint64_t a_cursor = p->ReadChanges(0, 1, ChangeFilter{}).changes.at(0).first;
  // T moves 6 days past a's change, but it is less than an hour old: kept.
  Send(*p, {Line("z1", "message", "z", At(kDay0 + 6, 11))});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(p->ReadChanges(0, 10, ChangeFilter{}).gone);
  // Two hours later by the wall clock: a's first change is past both.
  wall.store(At(kDay0, 2));
  ChangePage page;
  for (int i = 0; i < 200; ++i) {
    page = p->ReadChanges(0, 10, ChangeFilter{});
    if (page.gone) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(page.gone) << "nothing was trimmed";
  EXPECT_GE(page.oldest, a_cursor);
  // b's change (day 2, within 5 days of T on day 6) is still there.
  ChangePage rest = p->ReadChanges(Pipeline::kChangesFromOldest, 100, ChangeFilter{});
  EXPECT_FALSE(rest.gone);
  bool has_b = false;
  for (auto& [cursor, c] : rest.changes) has_b |= c.user_id == "b";
  EXPECT_TRUE(has_b);
}

std::string Order(const std::string& id, const std::string& user, int64_t ts, int yuan) {
  return "{\"event_id\":\"" + id + "\",\"type\":\"order\",\"user_id\":\"" + user +
         "\",\"ts\":" + std::to_string(ts) + ",\"order_id\":\"" + id +
         "\",\"amount\":" + std::to_string(yuan) + "}";
}

std::unique_ptr<Pipeline> OpenWithRules(const std::string& dir, int64_t high_value_spend_fen) {
  PipelineOptions o;
  o.data_dir = dir;
  o.shards = 2;
  o.log_to_stderr = false;
  o.config.max_future_ms = 0;
  o.config.rules.high_value_spend_fen = high_value_spend_fen;
  auto p = Pipeline::Open(o);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

// Every change in the feed, per user, in feed order.
std::map<std::string, std::vector<state::TierChange>> AllChanges(Pipeline& p) {
  std::map<std::string, std::vector<state::TierChange>> out;
  for (auto& [cursor, c] : p.ReadChanges(0, 100000, ChangeFilter{}).changes) {
    out[c.user_id].push_back(c);
  }
  return out;
}

TEST(ChangeFeed, NewRulesAtStartUpChangeTiersWithCauseRulesAndKeepEveryChain) {
  TempDir dir;
  const int64_t last_ts = At(kDay0 + 40, 13);
  {
    auto p = OpenWithRules(dir.path(), 50'000);
    // h: four orders of 100 yuan on day 40 (spend 400, 3 repeat orders):
    // short of high_value's 500. g: two orders, never high_value. n: joins
    // on day 39, new under any rules.
    Send(*p, {Line("h0", "join", "h", At(kDay0, 10)), Line("g0", "join", "g", At(kDay0, 10))});
    Send(*p, {Line("n0", "join", "n", At(kDay0 + 39, 10))});
    Send(*p,
         {Order("h1", "h", At(kDay0 + 40, 10), 100), Order("h2", "h", At(kDay0 + 40, 11), 100),
          Order("h3", "h", At(kDay0 + 40, 12), 100), Order("h4", "h", last_ts, 100),
          Order("g1", "g", At(kDay0 + 40, 10), 100), Order("g2", "g", At(kDay0 + 40, 11), 100)});
    (void)Await(*p, &Pipeline::GetKpis);
    ASSERT_TRUE(p->Close().ok());
  }
  uint64_t end_before = 0;
  std::map<std::string, std::vector<state::TierChange>> before;
  {
    auto p = OpenWithRules(dir.path(), 50'000);  // the same rules: nothing changes
    before = AllChanges(*p);
    end_before = p->ChangesEnd();
    ASSERT_EQ(before.at("h").back().to, state::Tier::kDormant);
    ASSERT_TRUE(p->Close().ok());
  }
  {
    // high_value from 300 yuan: h becomes high_value, by the new rules, at T.
    auto p = OpenWithRules(dir.path(), 30'000);
    const auto after = AllChanges(*p);
    const auto& h = after.at("h");
    ASSERT_EQ(h.size(), before.at("h").size() + 1);
    const state::TierChange& c = h.back();
    EXPECT_EQ(c.from, state::Tier::kDormant);
    EXPECT_EQ(c.to, state::Tier::kHighValue);
    EXPECT_EQ(c.cause, state::ChangeCause::kRules);
    EXPECT_EQ(c.cause_ref, "30000/3/30/3");
    EXPECT_EQ(c.at_ms, last_ts);
    EXPECT_EQ(c.seq, h.size());
    EXPECT_EQ(after.at("g").size(), before.at("g").size());
    EXPECT_EQ(after.at("n").size(), before.at("n").size());
    const auto profile = Await(*p, &Pipeline::GetUser, std::string("h"));
    ASSERT_TRUE(profile.has_value());
    EXPECT_EQ(profile->profile.tier, state::Tier::kHighValue);
    ASSERT_TRUE(p->Close().ok());
  }
  {
    // The same new rules again: nothing more. Then the old ones: back.
    auto p = OpenWithRules(dir.path(), 30'000);
    EXPECT_EQ(AllChanges(*p).at("h").size(), before.at("h").size() + 1);
    ASSERT_TRUE(p->Close().ok());
  }
  auto p = OpenWithRules(dir.path(), 50'000);
  const auto all = AllChanges(*p);
  const auto& h = all.at("h");
  ASSERT_EQ(h.size(), before.at("h").size() + 2);
  EXPECT_EQ(h.back().to, state::Tier::kDormant);
  EXPECT_EQ(h.back().cause, state::ChangeCause::kRules);
  EXPECT_EQ(h.back().cause_ref, "50000/3/30/3");
  EXPECT_GT(p->ChangesEnd(), end_before);
  // Every chain: numbered 1, 2, 3, ..., each from the previous to, starting
  // from no tier, ending at her tier.
  for (const auto& [user, changes] : all) {
    for (size_t i = 0; i < changes.size(); ++i) {
      EXPECT_EQ(changes[i].seq, i + 1) << user;
      EXPECT_EQ(changes[i].from, i == 0 ? state::Tier::kNone : changes[i - 1].to) << user << i;
    }
    const auto profile = Await(*p, &Pipeline::GetUser, user);
    ASSERT_TRUE(profile.has_value()) << user;
    EXPECT_EQ(profile->profile.tier, changes.back().to) << user;
  }
}

TEST(ChangeFeedCursors, VisibleOnlyUpToTheOldestClaimInFlight) {
  ChangeFeed feed(10);
  EXPECT_EQ(feed.visible_end(), 11u);
  const uint64_t a = feed.Claim(3);  // 11..13
  const uint64_t b = feed.Claim(2);  // 14..15
  EXPECT_EQ(a, 11u);
  EXPECT_EQ(b, 14u);
  int woken = 0;
  const uint64_t token = feed.OnAdvance(10, [&] { ++woken; });
  EXPECT_NE(token, 0u);
  feed.Release(b);  // a is still being written: nothing new is visible
  EXPECT_EQ(feed.visible_end(), 11u);
  EXPECT_EQ(woken, 0);
  feed.Release(a);
  EXPECT_EQ(feed.visible_end(), 16u);
  EXPECT_EQ(woken, 1);
  EXPECT_FALSE(feed.Cancel(token));
  // Already past: runs at once.
  EXPECT_EQ(feed.OnAdvance(3, [&] { ++woken; }), 0u);
  EXPECT_EQ(woken, 2);
  const uint64_t later = feed.OnAdvance(15, [&] { ++woken; });
  EXPECT_TRUE(feed.Cancel(later));
  feed.Release(feed.Claim(1));
  EXPECT_EQ(woken, 2);
}

}  // namespace
}  // namespace tierstream::pipeline
