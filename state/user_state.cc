// The per-user rules of SPEC §3: applying an event to a user's state, her
// windowed counts and tier as of a day, and her binary encoding.
#include "state/user_state.h"

#include <algorithm>

#include "common/varint.h"

namespace tierstream::state {

using ingest::Event;
using ingest::EventType;

std::string_view TierName(Tier t) {
  switch (t) {
    case Tier::kLeft:
      return "left";
    case Tier::kHighValue:
      return "high_value";
    case Tier::kNew:
      return "new";
    case Tier::kActive:
      return "active";
    case Tier::kDormant:
      return "dormant";
    case Tier::kRegular:
      return "regular";
    case Tier::kNone:
      break;
  }
  return "none";
}

std::optional<Tier> ParseTier(std::string_view name) {
  for (int i = 0; i < kTierCount; ++i) {
    if (TierName(static_cast<Tier>(i)) == name) return static_cast<Tier>(i);
  }
  return std::nullopt;
}

namespace {

int64_t Points(const Event& e) {
  switch (e.type) {
    case EventType::kMessage:
    case EventType::kReaction:
      return 1;
    case EventType::kCheckin:
      return 2;
    case EventType::kShare:
      return 3;
    case EventType::kOrder:
      return e.amount_fen / 100;
    case EventType::kRefund:
      return -(e.amount_fen / 100);
    default:
      return 0;
  }
}

DayBucket* BucketFor(UserState* s, int32_t day) {
  auto& b = s->buckets;
  // Most events land on the newest day: scan from the back.
  auto it = b.end();
  while (it != b.begin() && (it - 1)->day > day) --it;
  if (it != b.begin() && (it - 1)->day == day) return &*(it - 1);
  it = b.insert(it, DayBucket{});
  it->day = day;
  return &*it;
}

}  // namespace

void ApplyOwnEvent(UserState* s, const Event& e, int64_t utc_offset_ms, int32_t today) {
  const int64_t ts = e.ts_ms;
  if (s->first_own_ts == kNoTs || ts < s->first_own_ts) s->first_own_ts = ts;
  s->points += Points(e);
  const int32_t day = DayOf(ts, utc_offset_ms);
  const bool in_window = day > today - kWindow30;
  switch (e.type) {
    case EventType::kMessage:
    case EventType::kReaction:
    case EventType::kCheckin:
    case EventType::kShare:
      if (s->last_active == kNoTs || ts > s->last_active) s->last_active = ts;
      if (in_window) ++BucketFor(s, day)->interactions;
      break;
    case EventType::kJoin:
      if (s->first_join_ts == kNoTs || ts < s->first_join_ts) s->first_join_ts = ts;
      [[fallthrough]];
    case EventType::kLeave: {
      const bool leave = e.type == EventType::kLeave;
      // The latest membership event wins; on equal ts a leave wins.
      if (s->membership_ts == kNoTs || ts > s->membership_ts || (ts == s->membership_ts && leave)) {
        s->membership_ts = ts;
        s->membership_leave = leave;
      }
      break;
    }
    case EventType::kOrder:
      if (s->last_active == kNoTs || ts > s->last_active) s->last_active = ts;
      ++s->orders_total;
      s->spend_total_fen += e.amount_fen;
      if (in_window) {
        DayBucket* b = BucketFor(s, day);
        ++b->orders;
        b->spend_fen += e.amount_fen;
      }
      break;
    case EventType::kRefund:
      s->spend_total_fen -= e.amount_fen;
      if (in_window) BucketFor(s, day)->spend_fen -= e.amount_fen;
      break;
    case EventType::kReferralCredit:
      break;
  }
}

void ApplyReferralCredit(UserState* s, int64_t join_ts) {
  ++s->referrals;
  s->points += 10;
  if (s->first_ref_ts == kNoTs || join_ts < s->first_ref_ts) s->first_ref_ts = join_ts;
}

void PruneBuckets(UserState* s, int32_t today) {
  auto& b = s->buckets;
  auto keep = std::find_if(b.begin(), b.end(),
                           [&](const DayBucket& x) { return x.day > today - kWindow30; });
  b.erase(b.begin(), keep);
}

Windows ComputeWindows(const UserState& s, int32_t today) {
  Windows w;
  for (const DayBucket& b : s.buckets) {
    if (b.day <= today - kWindow30 || b.day > today) continue;
    w.spend_30d_fen += b.spend_fen;
    w.interactions_30d += b.interactions;
    w.orders_30d += b.orders;
    if (b.day > today - kWindow7) w.interactions_7d += b.interactions;
  }
  return w;
}

Tier EvaluateTier(const UserState& s, const Windows& w, int32_t today, int64_t utc_offset_ms,
                  const TierRules& rules) {
  if (!s.member()) return Tier::kLeft;
  const int64_t repeat_orders = s.orders_total > 0 ? s.orders_total - 1 : 0;
  if (w.spend_30d_fen >= rules.high_value_spend_fen &&
      repeat_orders >= rules.high_value_repeat_orders) {
    return Tier::kHighValue;
  }
  if (today - DayOf(s.joined_at(), utc_offset_ms) < rules.new_days) return Tier::kNew;
  if (w.interactions_7d >= rules.active_interactions_7d) return Tier::kActive;
  if (w.interactions_7d == 0) return Tier::kDormant;
  return Tier::kRegular;
}

int32_t NextCheckDay(const UserState& s, int32_t today, int64_t utc_offset_ms,
                     const TierRules& rules) {
  if (!s.member()) return kNoDay;  // `left` does not change with time
  int32_t next = INT32_MAX;
  auto consider = [&](int32_t day) {
    if (day > today && day < next) next = day;
  };
  consider(DayOf(s.joined_at(), utc_offset_ms) + rules.new_days);
  for (const DayBucket& b : s.buckets) {
    if (b.interactions != 0) consider(b.day + kWindow7);
    if (b.spend_fen != 0) consider(b.day + kWindow30);
  }
  return next == INT32_MAX ? kNoDay : next;
}

// ---- codec ----------------------------------------------------------------

namespace {

constexpr uint8_t kUserStateVersion = 1;

enum : uint64_t {
  kHasMembership = 1 << 0,
  kLeave = 1 << 1,
  kHasJoin = 1 << 2,
  kHasOwn = 1 << 3,
  kHasRef = 1 << 4,
  kHasActive = 1 << 5,
  kHasChanges = 1 << 6,  // a change count follows the buckets
};

// Timestamps are stored as offsets from 2000-01-01, which keeps varints short.
void PutTs(std::string* out, int64_t ts) { PutVarint64(out, static_cast<uint64_t>(ts - kMinTsMs)); }
bool GetTs(std::string_view* in, int64_t* ts) {
  uint64_t v;
  if (!GetVarint64(in, &v) || v >= static_cast<uint64_t>(kMaxTsMs - kMinTsMs)) return false;
  *ts = static_cast<int64_t>(v) + kMinTsMs;
  return true;
}

}  // namespace

void EncodeUserState(const UserState& s, std::string* out) {
  out->push_back(static_cast<char>(kUserStateVersion));
  uint64_t flags = 0;
  if (s.membership_ts != kNoTs) flags |= kHasMembership;
  if (s.membership_leave) flags |= kLeave;
  if (s.first_join_ts != kNoTs) flags |= kHasJoin;
  if (s.first_own_ts != kNoTs) flags |= kHasOwn;
  if (s.first_ref_ts != kNoTs) flags |= kHasRef;
  if (s.last_active != kNoTs) flags |= kHasActive;
  if (s.changes != 0) flags |= kHasChanges;
  PutVarint64(out, flags);
  if (flags & kHasMembership) PutTs(out, s.membership_ts);
  if (flags & kHasJoin) PutTs(out, s.first_join_ts);
  if (flags & kHasOwn) PutTs(out, s.first_own_ts);
  if (flags & kHasRef) PutTs(out, s.first_ref_ts);
  if (flags & kHasActive) PutTs(out, s.last_active);
  PutVarint64(out, static_cast<uint64_t>(s.tier));
  PutVarintSigned(out, s.spend_total_fen);
  PutVarintSigned(out, s.points);
  PutVarint64(out, s.orders_total);
  PutVarint64(out, s.referrals);
  PutVarint64(out, s.buckets.size());
  int32_t prev = 0;
  for (const DayBucket& b : s.buckets) {
    PutVarintSigned(out, b.day - prev);  // first is absolute, then deltas
    prev = b.day;
    PutVarint64(out, b.interactions);
    PutVarint64(out, b.orders);
    PutVarintSigned(out, b.spend_fen);
  }
  if (flags & kHasChanges) PutVarint64(out, s.changes);
}

Status DecodeUserState(std::string_view in, UserState* s) {
  auto bad = [](const char* what) {
    return Status::Corruption(std::string("user state: ") + what);
  };
  if (in.empty() || static_cast<uint8_t>(in[0]) != kUserStateVersion) {
    return bad("unknown version");
  }
  in.remove_prefix(1);
  *s = UserState{};
  uint64_t flags, tier, orders, referrals, nbuckets;
  if (!GetVarint64(&in, &flags)) return bad("truncated flags");
  if ((flags & kHasMembership) && !GetTs(&in, &s->membership_ts)) return bad("membership_ts");
  s->membership_leave = (flags & kLeave) != 0;
  if ((flags & kHasJoin) && !GetTs(&in, &s->first_join_ts)) return bad("first_join_ts");
  if ((flags & kHasOwn) && !GetTs(&in, &s->first_own_ts)) return bad("first_own_ts");
  if ((flags & kHasRef) && !GetTs(&in, &s->first_ref_ts)) return bad("first_ref_ts");
  if ((flags & kHasActive) && !GetTs(&in, &s->last_active)) return bad("last_active");
  if (!GetVarint64(&in, &tier) || tier > static_cast<uint64_t>(Tier::kNone)) return bad("tier");
  s->tier = static_cast<Tier>(tier);
  if (!GetVarintSigned(&in, &s->spend_total_fen) || !GetVarintSigned(&in, &s->points) ||
      !GetVarint64(&in, &orders) || !GetVarint64(&in, &referrals) || orders > UINT32_MAX ||
      referrals > UINT32_MAX || !GetVarint64(&in, &nbuckets) || nbuckets > 4096) {
    return bad("counters");
  }
  s->orders_total = static_cast<uint32_t>(orders);
  s->referrals = static_cast<uint32_t>(referrals);
  s->buckets.resize(nbuckets);
  int64_t prev = 0;
  for (DayBucket& b : s->buckets) {
    int64_t delta, spend;
    uint64_t inter, ord;
    if (!GetVarintSigned(&in, &delta) || !GetVarint64(&in, &inter) || !GetVarint64(&in, &ord) ||
        !GetVarintSigned(&in, &spend) || inter > UINT32_MAX || ord > UINT32_MAX) {
      return bad("bucket");
    }
    if (delta < INT32_MIN / 2 || delta > INT32_MAX / 2) return bad("bucket day");
    prev += delta;
    if (prev < INT32_MIN / 2 || prev > INT32_MAX / 2) return bad("bucket day");
    b.day = static_cast<int32_t>(prev);
    b.interactions = static_cast<uint32_t>(inter);
    b.orders = static_cast<uint32_t>(ord);
    b.spend_fen = spend;
  }
  if (flags & kHasChanges) {
    uint64_t changes;
    if (!GetVarint64(&in, &changes) || changes > UINT32_MAX) return bad("changes");
    s->changes = static_cast<uint32_t>(changes);
  }
  if (!in.empty()) return bad("trailing bytes");
  return Status::Ok();
}

}  // namespace tierstream::state
