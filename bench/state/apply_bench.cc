// Per-event cost of applying accepted events to a shard's in-memory state,
// and of the KPI query over it.
#include <benchmark/benchmark.h>

#include <deque>
#include <string>
#include <vector>

#include "state/shard_state.h"

namespace tierstream::state {
namespace {

using ingest::Event;
using ingest::EventType;

constexpr int64_t kStart = 1763913600000;

struct Stream {
  std::deque<std::string> strings;
  std::vector<Event> events;
};

Stream MakeStream(int n, int users) {
  Stream s;
  for (int i = 0; i < n; ++i) {
    Event e;
    s.strings.push_back("ev-" + std::to_string(i));
    e.event_id = s.strings.back();
    s.strings.push_back("u" + std::to_string((i * 7919) % users));
    e.user_id = s.strings.back();
    e.ts_ms = kStart + static_cast<int64_t>(i) * 30'000;  // ~30 days per 86k events
    switch (i % 8) {
      case 0: e.type = EventType::kJoin; break;
      case 1: e.type = EventType::kOrder; e.amount_fen = 12950; e.community = true; break;
      case 2: e.type = EventType::kRefund; e.amount_fen = 500; break;
      default: e.type = EventType::kMessage;
    }
    s.events.push_back(e);
  }
  return s;
}

void BM_ShardState_ApplyMixed(benchmark::State& state) {
  const int n = 200000;
  Stream s = MakeStream(n, static_cast<int>(state.range(0)));
  const Config config;
  {  // Verify before timing: every event accepted and counted.
    ShardState check(0, config);
    for (const Event& e : s.events) {
      check.MarkSeen(e.event_id, 0, e.ts_ms);
      check.Apply(e, DayOf(e.ts_ms, config.utc_offset_ms));
    }
    if (check.Kpis(DayOf(s.events.back().ts_ms, config.utc_offset_ms)).events_accepted != n) {
      state.SkipWithError("apply output is wrong");
      return;
    }
  }
  for (auto _ : state) {
    ShardState shard(0, config);
    for (const Event& e : s.events) {
      if (shard.MarkSeen(e.event_id, 0, e.ts_ms)) {
        shard.Apply(e, DayOf(e.ts_ms, config.utc_offset_ms));
      }
    }
    benchmark::DoNotOptimize(shard.resident_users());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_ShardState_ApplyMixed)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_ShardState_KpiQuery(benchmark::State& state) {
  Stream s = MakeStream(200000, 100000);
  const Config config;
  ShardState shard(0, config);
  for (const Event& e : s.events) {
    shard.MarkSeen(e.event_id, 0, e.ts_ms);
    shard.Apply(e, DayOf(e.ts_ms, config.utc_offset_ms));
  }
  const int32_t today = DayOf(s.events.back().ts_ms, config.utc_offset_ms);
  shard.Sweep(today, SIZE_MAX);
  for (auto _ : state) benchmark::DoNotOptimize(shard.Kpis(today));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ShardState_KpiQuery);

}  // namespace
}  // namespace tierstream::state

BENCHMARK_MAIN();
