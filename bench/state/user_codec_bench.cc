// Encode/decode cost of the persisted user state (what every checkpoint
// writes per dirty user and every reload of an evicted user reads).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "bench/synthetic_events.h"
#include "state/user_state.h"

namespace tierstream::state {
namespace {

using ingest::Event;
using ingest::EventType;

constexpr int kUsers = 10000;
constexpr int kHistoryDays = 60;

// Users with 60 days of history as of `today`: a third quiet, a third casual,
// a third heavy (daily interactions, weekly orders, the odd refund), so the
// 30-day bucket lists range from empty to full.
std::vector<UserState> MakeUsers(int32_t* today_out) {
  const Config config;
  const int64_t first_day_ms = bench::kStartMs;
  const int32_t today = bench::DayOfDefault(first_day_ms) + kHistoryDays - 1;
  std::mt19937_64 rng(42);
  std::vector<UserState> users(kUsers);
  for (int i = 0; i < kUsers; ++i) {
    UserState& s = users[static_cast<size_t>(i)];
    const int level = i % 3;
    const double p_active = level == 0 ? 0.05 : level == 1 ? 0.3 : 0.9;
    const double p_order = level == 0 ? 0.0 : level == 1 ? 0.03 : 0.15;
    Event e;
    const int join_day = static_cast<int>(rng() % kHistoryDays);
    e.type = EventType::kJoin;
    e.ts_ms = first_day_ms + join_day * kMsPerDay + static_cast<int64_t>(rng() % kMsPerDay);
    ApplyOwnEvent(&s, e, config.utc_offset_ms, today);
    if (i % 7 == 0) ApplyReferralCredit(&s, e.ts_ms + 1000);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int d = join_day; d < kHistoryDays; ++d) {
      const int64_t day_ms = first_day_ms + d * kMsPerDay;
      if (u(rng) < p_active) {
        const int n = 1 + static_cast<int>(rng() % 6);
        for (int k = 0; k < n; ++k) {
          e.type = static_cast<EventType>(rng() % 4);  // the interaction types
          e.ts_ms = day_ms + static_cast<int64_t>(rng() % kMsPerDay);
          ApplyOwnEvent(&s, e, config.utc_offset_ms, today);
        }
      }
      if (u(rng) < p_order) {
        e.type = u(rng) < 0.1 ? EventType::kRefund : EventType::kOrder;
        e.amount_fen = 100 + static_cast<int64_t>(rng() % 80000);
        e.ts_ms = day_ms + static_cast<int64_t>(rng() % kMsPerDay);
        ApplyOwnEvent(&s, e, config.utc_offset_ms, today);
      }
    }
    PruneBuckets(&s, today);
    s.tier = EvaluateTier(s, ComputeWindows(s, today), today, config.utc_offset_ms, config.rules);
  }
  *today_out = today;
  return users;
}

// The persisted fields (not `dirty` or `next_check_day`).
bool SamePersisted(const UserState& a, const UserState& b) {
  if (a.membership_ts != b.membership_ts || a.membership_leave != b.membership_leave ||
      a.tier != b.tier || a.first_join_ts != b.first_join_ts || a.first_own_ts != b.first_own_ts ||
      a.first_ref_ts != b.first_ref_ts || a.last_active != b.last_active ||
      a.spend_total_fen != b.spend_total_fen || a.points != b.points ||
      a.orders_total != b.orders_total || a.referrals != b.referrals ||
      a.buckets.size() != b.buckets.size()) {
    return false;
  }
  for (size_t i = 0; i < a.buckets.size(); ++i) {
    const DayBucket& x = a.buckets[i];
    const DayBucket& y = b.buckets[i];
    if (x.day != y.day || x.interactions != y.interactions || x.orders != y.orders ||
        x.spend_fen != y.spend_fen) {
      return false;
    }
  }
  return true;
}

struct Corpus {
  std::vector<UserState> users;
  std::vector<std::string> encoded;
  int64_t bytes = 0;
  int64_t buckets = 0;
};

// Builds the users and their encodings; "" if every one round-trips.
std::string MakeCorpus(Corpus* c) {
  int32_t today = 0;
  c->users = MakeUsers(&today);
  for (const UserState& s : c->users) {
    c->encoded.emplace_back();
    EncodeUserState(s, &c->encoded.back());
    c->bytes += static_cast<int64_t>(c->encoded.back().size());
    c->buckets += static_cast<int64_t>(s.buckets.size());
    UserState back;
    if (!DecodeUserState(c->encoded.back(), &back).ok()) return "a user does not decode";
    if (!SamePersisted(s, back)) return "a decoded user differs from the original";
  }
  if (c->buckets < kUsers * 5) return "too little bucket history to be realistic";
  return "";
}

void SetCounters(benchmark::State& state, const Corpus& c) {
  state.SetItemsProcessed(state.iterations() * kUsers);
  state.SetBytesProcessed(state.iterations() * c.bytes);
  state.counters["bytes_per_user"] = static_cast<double>(c.bytes) / kUsers;
  state.counters["buckets_per_user"] = static_cast<double>(c.buckets) / kUsers;
}

void BM_UserCodec_Encode(benchmark::State& state) {
  Corpus c;
  if (const std::string wrong = MakeCorpus(&c); !wrong.empty()) {
    state.SkipWithError(wrong.c_str());
    return;
  }
  std::string buf;
  for (auto _ : state) {
    for (const UserState& s : c.users) {
      buf.clear();  // as ShardState::DrainDirty reuses one buffer
      EncodeUserState(s, &buf);
      benchmark::DoNotOptimize(buf.data());
    }
  }
  SetCounters(state, c);
}
BENCHMARK(BM_UserCodec_Encode)->Unit(benchmark::kMicrosecond);

void BM_UserCodec_Decode(benchmark::State& state) {
  Corpus c;
  if (const std::string wrong = MakeCorpus(&c); !wrong.empty()) {
    state.SkipWithError(wrong.c_str());
    return;
  }
  UserState s;
  for (auto _ : state) {
    for (const std::string& bytes : c.encoded) {
      const bool ok = DecodeUserState(bytes, &s).ok();
      benchmark::DoNotOptimize(ok);
    }
  }
  SetCounters(state, c);
}
BENCHMARK(BM_UserCodec_Decode)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace tierstream::state

BENCHMARK_MAIN();
