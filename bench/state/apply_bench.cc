// Per-event cost of applying accepted events to a shard's in-memory state:
// a realistic mix (with the duplicate check), and each event type alone.
#include <benchmark/benchmark.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "bench/synthetic_events.h"
#include "state/shard_state.h"

namespace tierstream::state {
namespace {

using bench::EventList;
using bench::UserId;
using ingest::Event;
using ingest::EventType;

constexpr int64_t kStart = bench::kStartMs;

struct Stream {
  std::deque<std::string> strings;
  std::vector<Event> events;
};

Stream MakeStream(int n, int users) {
  Stream s;
  for (int i = 0; i < n; ++i) {
    Event e;
    // append(), not operator+: GCC 12 warns falsely on "literal" + string (PR 105329).
    s.strings.push_back(std::string("ev-").append(std::to_string(i)));
    e.event_id = s.strings.back();
    s.strings.push_back(std::string("u").append(std::to_string((i * 7919) % users)));
    e.user_id = s.strings.back();
    e.ts_ms = kStart + static_cast<int64_t>(i) * 30'000;  // ~30 days per 86k events
    switch (i % 8) {
      case 0:
        e.type = EventType::kJoin;
        break;
      case 1:
        e.type = EventType::kOrder;
        e.amount_fen = 12950;
        e.community = true;
        break;
      case 2:
        e.type = EventType::kRefund;
        e.amount_fen = 500;
        break;
      default:
        e.type = EventType::kMessage;
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

// ---- one event type at a time ---------------------------------------------
//
// A shard holds kBaseUsers members (one join each, on day 0); the timed part
// applies kTypedEvents events of one type over the next 20 days, each base
// user getting exactly kTypedEvents / kBaseUsers of them (7919 is prime to
// kBaseUsers). Joins are of new users, each naming a base user as referrer;
// referral credits are what those joins send to the referrers' shards. The
// duplicate check is left out (BM_ShardState_ApplyMixed includes it).

constexpr int kBaseUsers = 10000;
constexpr int kTypedEvents = 100000;
constexpr int64_t kPerUser = kTypedEvents / kBaseUsers;
constexpr int64_t kOrderFen = 12950;
constexpr int64_t kRefundFen = 500;

EventList MakeBase() {
  EventList base;
  for (int i = 0; i < kBaseUsers; ++i) base.Add(EventType::kJoin, UserId(i), kStart + i);
  return base;
}

EventList MakeTyped(EventType type) {
  EventList list;
  const int64_t first = kStart + kMsPerDay;
  const int64_t step = 20 * kMsPerDay / kTypedEvents;
  for (int k = 0; k < kTypedEvents; ++k) {
    const std::string base_user = UserId((static_cast<int64_t>(k) * 7919) % kBaseUsers);
    const int64_t ts = first + k * step;
    switch (type) {
      case EventType::kJoin:
        list.Add(type, UserId(kBaseUsers + k), ts, 0, base_user);
        break;
      case EventType::kReferralCredit:
        list.Add(type, base_user, ts, 0, UserId(kBaseUsers + k));
        break;
      case EventType::kOrder:
        list.Add(type, base_user, ts, kOrderFen).community = k % 3 == 0;
        break;
      case EventType::kRefund:
        list.Add(type, base_user, ts, kRefundFen);
        break;
      default:
        list.Add(type, base_user, ts);
    }
  }
  return list;
}

void ApplyAll(ShardState* shard, const EventList& list) {
  for (const Event& e : list.events()) shard->Apply(e, bench::DayOfDefault(e.ts_ms));
}

// What a correct shard reports after the base and the typed events; "" if right.
std::string CheckTyped(ShardState* shard, EventType type, int32_t today) {
  shard->Sweep(today, SIZE_MAX);
  const KpiPartial k = shard->Kpis(today);
  Profile p;
  if (!shard->GetProfile(UserId(0), today, &p)) return "user 0 is missing";
  const int64_t own_events = kBaseUsers + (type == EventType::kReferralCredit ? 0 : kTypedEvents);
  if (k.events_accepted != own_events) return "events_accepted";
  switch (type) {
    case EventType::kJoin:
      if (k.users_total != kBaseUsers + kTypedEvents || k.members != k.users_total ||
          k.referred_joins_30d != kTypedEvents ||
          k.tiers[static_cast<size_t>(Tier::kNew)] != k.members) {
        return "join: users, members, referred joins or new members";
      }
      break;
    case EventType::kMessage:
      if (k.users_total != kBaseUsers || k.mau != kBaseUsers || p.interactions_30d != kPerUser) {
        return "message: users, MAU or interactions";
      }
      break;
    case EventType::kOrder:
      if (k.orders_30d != kTypedEvents || k.gmv_30d_fen != kTypedEvents * kOrderFen ||
          k.repeat_buyers_total != kBaseUsers || p.orders_30d != kPerUser ||
          p.spend_30d_fen != kPerUser * kOrderFen) {
        return "order: orders, GMV, repeat buyers or spend";
      }
      break;
    case EventType::kRefund:
      if (k.refunds_30d_fen != kTypedEvents * kRefundFen ||
          p.spend_total_fen != -kPerUser * kRefundFen) {
        return "refund: refunds or spend";
      }
      break;
    case EventType::kReferralCredit:
      if (k.users_total != kBaseUsers || p.referrals != kPerUser || p.points != 10 * kPerUser) {
        return "credit: referrals or points";
      }
      break;
    default:
      return "unexpected type";
  }
  return "";
}

void BM_ShardState_Apply(benchmark::State& state, EventType type) {
  const Config config;
  const EventList base = MakeBase();
  const EventList typed = MakeTyped(type);
  {  // Verify before timing.
    ShardState check(0, config);
    ApplyAll(&check, base);
    ApplyAll(&check, typed);
    const std::string wrong =
        CheckTyped(&check, type, bench::DayOfDefault(typed.events().back().ts_ms));
    if (!wrong.empty()) {
      state.SkipWithError(("apply output is wrong: " + wrong).c_str());
      return;
    }
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto shard = std::make_unique<ShardState>(0, config);
    ApplyAll(shard.get(), base);
    state.ResumeTiming();
    ApplyAll(shard.get(), typed);
    state.PauseTiming();
    shard.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kTypedEvents);
}
BENCHMARK_CAPTURE(BM_ShardState_Apply, join, EventType::kJoin)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ShardState_Apply, message, EventType::kMessage)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ShardState_Apply, order, EventType::kOrder)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ShardState_Apply, refund, EventType::kRefund)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ShardState_Apply, referral_credit, EventType::kReferralCredit)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tierstream::state

BENCHMARK_MAIN();
