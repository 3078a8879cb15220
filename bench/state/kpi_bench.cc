// The KPI query at a million users, and the tier sweep of a day on which
// 100k users change tier by time alone.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/synthetic_events.h"
#include "common/hash.h"
#include "server/wire_json.h"
#include "state/kpis.h"
#include "state/shard_state.h"

namespace tierstream::state {
namespace {

using bench::UserId;
using ingest::Event;
using ingest::EventType;

// ---- KPI query --------------------------------------------------------------

constexpr uint32_t kShards = 2;  // as the pipeline on this 2-core machine
constexpr int kHistoryDays = 60;

// Users routed to shards as the pipeline routes them, and the KPIs a correct
// implementation reports for them, counted independently while generating.
struct KpiFixture {
  std::vector<std::unique_ptr<ShardState>> shards;
  int32_t today = kNoDay;
  int64_t as_of = kNoTs;
  KpiPartial expected;
  std::string error;  // set if the shards disagree with `expected`
};

// Users join evenly over 60 days (one in five naming a referrer); a quarter
// order right after joining, a third send a message.
std::unique_ptr<KpiFixture> BuildKpiFixture(int64_t users) {
  const Config config;
  auto f = std::make_unique<KpiFixture>();
  for (uint32_t i = 0; i < kShards; ++i) {
    f->shards.push_back(std::make_unique<ShardState>(i, config));
  }
  const int64_t step = kHistoryDays * kMsPerDay / users;
  const int64_t last_ts = bench::kStartMs + (users - 1) * step + 2000;
  f->today = bench::DayOfDefault(last_ts);
  f->as_of = last_ts;
  const int32_t from = f->today - kWindow30 + 1;
  auto in_window = [&](int32_t day) { return day >= from && day <= f->today; };
  KpiPartial& x = f->expected;
  std::string user, referrer;
  for (int64_t i = 0; i < users; ++i) {
    user = UserId(i);
    ShardState& shard = *f->shards[ShardOf(user, kShards)];
    Event e;
    e.user_id = user;
    e.ts_ms = bench::kStartMs + i * step;
    const int32_t day = bench::DayOfDefault(e.ts_ms);
    e.type = EventType::kJoin;
    if (i % 5 == 0 && i > 0) {
      referrer = UserId(i / 2);
      e.referrer_id = referrer;
      if (in_window(day)) ++x.referred_joins_30d;
      if (day >= from - kWindow30 && day < from) ++x.referred_joins_prev_30d;
    }
    shard.Apply(e, day);
    ++x.users_total;
    ++x.members;
    ++x.events_accepted;
    if (in_window(day)) ++x.new_members_30d;
    int64_t last_active = kNoTs;
    if (i % 4 == 0) {
      Event order;
      order.user_id = user;
      order.type = EventType::kOrder;
      order.ts_ms = e.ts_ms + 1000;
      order.amount_fen = 9900 + (i % 100) * 100;
      order.community = i % 8 == 0;
      shard.Apply(order, bench::DayOfDefault(order.ts_ms));
      ++x.events_accepted;
      ++x.buyers_total;
      last_active = order.ts_ms;
      if (in_window(bench::DayOfDefault(order.ts_ms))) {
        ++x.orders_30d;
        x.community_orders_30d += order.community ? 1 : 0;
        x.gmv_30d_fen += order.amount_fen;
      }
    }
    if (i % 3 == 0) {
      Event message;
      message.user_id = user;
      message.type = EventType::kMessage;
      message.ts_ms = e.ts_ms + 2000;
      shard.Apply(message, bench::DayOfDefault(message.ts_ms));
      ++x.events_accepted;
      last_active = message.ts_ms;
    }
    if (last_active != kNoTs) {
      const int32_t active_day = bench::DayOfDefault(last_active);
      if (in_window(active_day)) ++x.mau;
      if (active_day == f->today) ++x.dau;
    }
  }
  KpiPartial got;
  for (auto& shard : f->shards) {
    shard->Sweep(f->today, SIZE_MAX);
    got.Add(shard->Kpis(f->today));
  }
  int64_t tiers = 0;
  for (int64_t t : got.tiers) tiers += t;
  if (got.users_total != x.users_total || got.members != x.members || tiers != users ||
      got.mau != x.mau || got.dau != x.dau || got.new_members_30d != x.new_members_30d ||
      got.orders_30d != x.orders_30d || got.community_orders_30d != x.community_orders_30d ||
      got.gmv_30d_fen != x.gmv_30d_fen || got.buyers_total != x.buyers_total ||
      got.referred_joins_30d != x.referred_joins_30d ||
      got.referred_joins_prev_30d != x.referred_joins_prev_30d ||
      got.events_accepted != x.events_accepted) {
    f->error = "KPIs differ from the independently counted ones";
  } else if (std::string body = server::RenderKpisJson(got, f->as_of);
             body.find("\"users_total\":" + std::to_string(users) + ",") == std::string::npos) {
    f->error = "rendered KPIs lack users_total";
  }
  return f;
}

// Built once per size: the library calls a benchmark several times while it
// picks an iteration count, and a million users take a second to build.
const KpiFixture& KpiFixtureFor(int64_t users) {
  static std::map<int64_t, std::unique_ptr<KpiFixture>> cache;
  auto& f = cache[users];
  if (f == nullptr) f = BuildKpiFixture(users);
  return *f;
}

// One GET /v1/kpis as a pipeline answers it: each shard finishes any due
// sweep and reports its partial, the partials are summed and rendered.
void BM_Kpis_Query(benchmark::State& state) {
  const KpiFixture& f = KpiFixtureFor(state.range(0));
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  size_t bytes = 0;
  for (auto _ : state) {
    KpiPartial total;
    for (const auto& shard : f.shards) {
      shard->Sweep(f.today, SIZE_MAX);
      total.Add(shard->Kpis(f.today));
    }
    std::string body = server::RenderKpisJson(total, f.as_of);
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_Kpis_Query)->ArgName("users")->Arg(100'000)->Arg(1'000'000);

// ---- tier sweep -------------------------------------------------------------

// Members ids[0..n) who all joined on day 0, so all leave `new` on day 30;
// user i sent i % 4 messages on day 29, so on day 30 a quarter turn dormant,
// half regular and a quarter active.
std::unique_ptr<ShardState> BuildDueShard(const std::vector<std::string>& ids, int32_t* due_day) {
  auto shard = std::make_unique<ShardState>(0, Config{});
  const int32_t day0 = bench::DayOfDefault(bench::kStartMs);
  const auto users = static_cast<int64_t>(ids.size());
  Event e;
  e.type = EventType::kJoin;
  for (int64_t i = 0; i < users; ++i) {
    e.user_id = ids[static_cast<size_t>(i)];
    e.ts_ms = bench::kStartMs + i;
    shard->Apply(e, day0);
  }
  e.type = EventType::kMessage;
  for (int64_t i = 0; i < users; ++i) {
    e.user_id = ids[static_cast<size_t>(i)];
    e.ts_ms = bench::kStartMs + 29 * kMsPerDay + i;
    for (int64_t k = 0; k < i % 4; ++k) shard->Apply(e, day0 + 29);
  }
  shard->Sweep(day0 + 29, SIZE_MAX);  // nothing is due before day 30
  *due_day = day0 + 30;
  return shard;
}

void BM_ShardState_SweepDue(benchmark::State& state) {
  const int64_t users = state.range(0);
  std::vector<std::string> ids;  // made once: formatting them would dominate the rebuilds
  for (int64_t i = 0; i < users; ++i) ids.push_back(UserId(i));
  {  // Verify before timing: every user changes tier on the due day.
    int32_t due_day = 0;
    auto check = BuildDueShard(ids, &due_day);
    const KpiPartial before = check->Kpis(due_day - 1);
    check->Sweep(due_day, SIZE_MAX);
    const KpiPartial after = check->Kpis(due_day);
    auto tier = [](const KpiPartial& k, Tier t) { return k.tiers[static_cast<size_t>(t)]; };
    const int64_t quarter = (users + 3) / 4;  // i % 4 == 0
    const int64_t active = users / 4;         // i % 4 == 3
    if (tier(before, Tier::kNew) != users || tier(after, Tier::kNew) != 0 ||
        tier(after, Tier::kDormant) != quarter || tier(after, Tier::kActive) != active ||
        tier(after, Tier::kRegular) != users - quarter - active) {
      state.SkipWithError("sweep output is wrong");
      return;
    }
  }
  for (auto _ : state) {
    state.PauseTiming();
    int32_t due_day = 0;
    auto shard = BuildDueShard(ids, &due_day);
    state.ResumeTiming();
    const bool done = shard->Sweep(due_day, SIZE_MAX);
    benchmark::DoNotOptimize(done);
    state.PauseTiming();
    shard.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * users);
}
BENCHMARK(BM_ShardState_SweepDue)
    ->ArgName("due_users")
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tierstream::state

BENCHMARK_MAIN();
