#include "state/shard_state.h"

#include <algorithm>
#include <cstring>
#include <queue>

#include "common/json_writer.h"

namespace tierstream::state {

using ingest::Event;
using ingest::EventType;

namespace {

// Day cells cover every day an accepted ts can fall on, for any offset
// within ±24h: [2000-01-01 - 1 day, 2100-01-01 + 1 day].
constexpr int32_t kFirstDay = static_cast<int32_t>(kMinTsMs / kMsPerDay) - 2;
constexpr int32_t kLastDay = static_cast<int32_t>(kMaxTsMs / kMsPerDay) + 2;
constexpr uint8_t kMetaVersion = 1;

// Debian's Abseil has its own string_view type: heterogeneous lookup needs it.
absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

// ---- DayHist ---------------------------------------------------------------

ShardState::DayHist::DayHist() : cells_(static_cast<size_t>(kLastDay - kFirstDay + 1), 0) {}

size_t ShardState::DayHist::Index(int32_t day) { return static_cast<size_t>(day - kFirstDay); }

int64_t ShardState::DayHist::Sum(int32_t from, int32_t to) const {
  from = std::max(from, kFirstDay);
  to = std::min(to, kLastDay);
  int64_t sum = 0;
  for (int32_t d = from; d <= to; ++d) sum += cells_[Index(d)];
  return sum;
}

void ShardState::DayHist::Encode(std::string* out) const {
  size_t nonzero = 0;
  for (int64_t v : cells_) nonzero += v != 0;
  PutVarint64(out, nonzero);
  int64_t prev = 0;
  for (size_t i = 0; i < cells_.size(); ++i) {
    if (cells_[i] == 0) continue;
    PutVarint64(out, static_cast<uint64_t>(static_cast<int64_t>(i) - prev));
    prev = static_cast<int64_t>(i);
    PutVarintSigned(out, cells_[i]);
  }
}

bool ShardState::DayHist::Decode(std::string_view* in) {
  std::fill(cells_.begin(), cells_.end(), 0);
  uint64_t n;
  if (!GetVarint64(in, &n) || n > cells_.size()) return false;
  uint64_t index = 0;
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t delta;
    int64_t v;
    if (!GetVarint64(in, &delta) || !GetVarintSigned(in, &v)) return false;
    index += delta;
    if (index >= cells_.size()) return false;
    cells_[index] = v;
  }
  return true;
}

// ---- ShardState ------------------------------------------------------------

ShardState::ShardState(uint32_t shard_id, const Config& config)
    : shard_id_(shard_id), config_(config) {}

bool ShardState::MarkSeen(std::string_view id, uint64_t seed, int64_t ts_ms) {
  Hash128 h = HashId128(id, seed);
  int32_t day = DayOf(ts_ms, config_.utc_offset_ms);
  auto [it, inserted] = seen_.try_emplace(h, day);
  if (!inserted) return false;
  seen_by_day_[day].push_back(h);
  new_seen_.emplace_back(h, day);
  return true;
}

void ShardState::UnmarkSeen(std::string_view id, uint64_t seed) {
  // seen_by_day_ and new_seen_ keep a stale entry; both are filtered by seen_.
  seen_.erase(HashId128(id, seed));
}

void ShardState::ExpireSeen(int32_t today) {
  const int32_t oldest_kept = today - config_.dedup_horizon_days;
  for (auto it = seen_by_day_.begin(); it != seen_by_day_.end();) {
    if (it->first >= oldest_kept) {
      ++it;
      continue;
    }
    for (const Hash128& h : it->second) {
      auto s = seen_.find(h);
      if (s != seen_.end() && s->second == it->first) seen_.erase(s);
    }
    seen_by_day_.erase(it++);
  }
}

ShardState::Contribution ShardState::ContributionOf(const UserState& s) const {
  Contribution c;
  c.member = s.member();
  if (c.member) {
    if (s.last_active != kNoTs) c.last_active_day = DayOf(s.last_active, config_.utc_offset_ms);
    c.joined_day = DayOf(s.joined_at(), config_.utc_offset_ms);
  }
  c.buyer = s.orders_total >= 1;
  c.repeat_buyer = s.orders_total >= 2;
  return c;
}

void ShardState::AddContribution(const Contribution& c, int64_t sign) {
  if (c.member) {
    agg_.members += sign;
    if (c.last_active_day != kNoDay) agg_.members_by_last_active.Add(c.last_active_day, sign);
    agg_.members_by_joined.Add(c.joined_day, sign);
  }
  agg_.buyers += c.buyer ? sign : 0;
  agg_.repeat_buyers += c.repeat_buyer ? sign : 0;
}

ShardState::Entry& ShardState::FindOrCreate(std::string_view user_id) {
  auto it = users_.find(Key(user_id));
  if (it != users_.end()) return *it;
  ++agg_.users;
  return *users_.emplace(std::string(user_id), UserState{}).first;
}

void ShardState::MarkDirty(Entry& e) {
  if (!e.second.dirty) {
    e.second.dirty = true;
    dirty_.push_back(&e);
  }
}

void ShardState::Reconcile(Entry& e, int32_t today) {
  UserState& s = e.second;
  PruneBuckets(&s, today);
  const Tier tier = EvaluateTier(s, ComputeWindows(s, today), today, config_.utc_offset_ms,
                                 config_.rules);
  if (tier != s.tier) {
    if (s.tier != Tier::kNone) --agg_.tiers[static_cast<size_t>(s.tier)];
    ++agg_.tiers[static_cast<size_t>(tier)];
    s.tier = tier;
    MarkDirty(e);
  }
  const int32_t next = NextCheckDay(s, today, config_.utc_offset_ms, config_.rules);
  if (next != s.next_check_day) {
    s.next_check_day = next;
    if (next != kNoDay) timers_[next].push_back(&e);
  }
}

void ShardState::Apply(const Event& e, int32_t today) {
  if (max_ts_ == kNoTs || e.ts_ms > max_ts_) max_ts_ = e.ts_ms;
  if (swept_day_ == kNoDay) swept_day_ = today;  // nothing can be due before the first event
  Entry& entry = FindOrCreate(e.user_id);
  const bool is_new = entry.second.tier == Tier::kNone;
  const Contribution before = ContributionOf(entry.second);
  if (e.type == EventType::kReferralCredit) {
    ApplyReferralCredit(&entry.second, e.ts_ms);
  } else {
    ++agg_.accepted;
    ApplyOwnEvent(&entry.second, e, config_.utc_offset_ms, today);
    const int32_t day = DayOf(e.ts_ms, config_.utc_offset_ms);
    switch (e.type) {
      case EventType::kOrder:
        agg_.orders.Add(day, 1);
        if (e.community) agg_.community_orders.Add(day, 1);
        agg_.gmv_fen.Add(day, e.amount_fen);
        break;
      case EventType::kRefund:
        agg_.refunds_fen.Add(day, e.amount_fen);
        break;
      case EventType::kJoin:
        if (!e.referrer_id.empty() && e.referrer_id != e.user_id) agg_.referred_joins.Add(day, 1);
        break;
      default:
        break;
    }
  }
  if (!is_new) AddContribution(before, -1);
  AddContribution(ContributionOf(entry.second), +1);
  MarkDirty(entry);
  Reconcile(entry, today);
}

bool ShardState::Sweep(int32_t today, size_t budget) {
  if (swept_day_ == kNoDay) {
    swept_day_ = today;
    return true;
  }
  for (;;) {
    while (sweep_pos_ < sweep_work_.size()) {
      if (budget == 0) return false;
      Entry* e = sweep_work_[sweep_pos_++];
      // Entries are invalidated lazily: only the latest schedule counts.
      if (e->second.next_check_day == sweep_work_day_) {
        Reconcile(*e, std::max(today, swept_day_));
        --budget;
      }
    }
    sweep_work_.clear();
    sweep_pos_ = 0;
    if (swept_day_ >= today) return true;
    ++swept_day_;
    auto it = timers_.find(swept_day_);
    if (it != timers_.end()) {
      sweep_work_ = std::move(it->second);
      sweep_work_day_ = swept_day_;
      timers_.erase(it);
    }
  }
}

bool ShardState::GetProfile(std::string_view user_id, int32_t today, Profile* out) const {
  auto it = users_.find(Key(user_id));
  if (it == users_.end()) return false;
  const UserState& s = it->second;
  const Windows w = ComputeWindows(s, today);
  out->user_id = it->first;
  out->member = s.member();
  out->joined_at = s.joined_at();
  out->last_active = s.last_active;
  out->interactions_7d = w.interactions_7d;
  out->interactions_30d = w.interactions_30d;
  out->orders_total = s.orders_total;
  out->orders_30d = w.orders_30d;
  out->repeat_orders = s.orders_total > 0 ? s.orders_total - 1 : 0;
  out->spend_30d_fen = w.spend_30d_fen;
  out->spend_total_fen = s.spend_total_fen;
  out->points = s.points;
  out->referrals = s.referrals;
  // Evaluated now, so a profile is exact even while a sweep is in progress.
  out->tier = EvaluateTier(s, w, today, config_.utc_offset_ms, config_.rules);
  return true;
}

std::string RenderProfileJson(const Profile& p, int64_t as_of) {
  std::string out;
  out.reserve(384);
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("user_id").String(p.user_id);
  w.Key("as_of").Int(as_of);
  w.Key("member").Bool(p.member);
  w.Key("joined_at").Int(p.joined_at);
  w.Key("last_active");
  if (p.last_active == kNoTs) {
    w.Null();
  } else {
    w.Int(p.last_active);
  }
  w.Key("interactions_7d").Int(p.interactions_7d);
  w.Key("interactions_30d").Int(p.interactions_30d);
  w.Key("orders_total").Int(p.orders_total);
  w.Key("orders_30d").Int(p.orders_30d);
  w.Key("repeat_orders").Int(p.repeat_orders);
  w.Key("spend_30d").Yuan(p.spend_30d_fen);
  w.Key("spend_total").Yuan(p.spend_total_fen);
  w.Key("points").Int(p.points);
  w.Key("referrals").Int(p.referrals);
  w.Key("tier").String(TierName(p.tier));
  w.EndObject();
  return out;
}

KpiPartial ShardState::Kpis(int32_t today) const {
  KpiPartial k;
  k.users_total = agg_.users;
  k.members = agg_.members;
  k.tiers = agg_.tiers;
  k.buyers_total = agg_.buyers;
  k.repeat_buyers_total = agg_.repeat_buyers;
  k.events_accepted = agg_.accepted;
  k.events_duplicate = agg_.duplicates;
  if (today == kNoDay) return k;
  const int32_t from = today - kWindow30 + 1;
  k.mau = agg_.members_by_last_active.Sum(from, today);
  k.dau = agg_.members_by_last_active.Sum(today, today);
  k.new_members_30d = agg_.members_by_joined.Sum(from, today);
  k.orders_30d = agg_.orders.Sum(from, today);
  k.community_orders_30d = agg_.community_orders.Sum(from, today);
  k.gmv_30d_fen = agg_.gmv_fen.Sum(from, today);
  k.refunds_30d_fen = agg_.refunds_fen.Sum(from, today);
  k.referred_joins_30d = agg_.referred_joins.Sum(from, today);
  k.referred_joins_prev_30d = agg_.referred_joins.Sum(from - kWindow30, from - 1);
  return k;
}

std::vector<std::string> ShardState::ListTier(Tier tier, std::string_view after,
                                              size_t limit) const {
  // A max-heap of the `limit` smallest ids above `after`.
  std::priority_queue<std::string_view> heap;
  for (const auto& [id, s] : users_) {
    if (s.tier != tier || std::string_view(id) <= after) continue;
    if (heap.size() < limit) {
      heap.push(id);
    } else if (limit > 0 && std::string_view(id) < heap.top()) {
      heap.pop();
      heap.push(id);
    }
  }
  std::vector<std::string> out(heap.size());
  for (size_t i = out.size(); i-- > 0;) {
    out[i] = std::string(heap.top());
    heap.pop();
  }
  return out;
}

// ---- persistence -----------------------------------------------------------

void ShardState::EncodeMeta(uint64_t log_seq, int64_t events_rejected, std::string* out) const {
  out->push_back(static_cast<char>(kMetaVersion));
  PutVarint64(out, shard_id_);
  PutVarint64(out, log_seq);
  PutVarintSigned(out, events_rejected);
  PutVarintSigned(out, max_ts_);
  PutVarintSigned(out, swept_day_);
  for (int64_t v : {agg_.users, agg_.members, agg_.buyers, agg_.repeat_buyers, agg_.accepted,
                    agg_.duplicates}) {
    PutVarintSigned(out, v);
  }
  for (int64_t v : agg_.tiers) PutVarintSigned(out, v);
  for (const DayHist* h : {&agg_.members_by_last_active, &agg_.members_by_joined, &agg_.orders,
                           &agg_.community_orders, &agg_.gmv_fen, &agg_.refunds_fen,
                           &agg_.referred_joins}) {
    h->Encode(out);
  }
}

Status ShardState::DecodeMeta(std::string_view in, uint64_t* log_seq, int64_t* events_rejected) {
  auto bad = [](const char* what) { return Status::Corruption(std::string("shard meta: ") + what); };
  if (in.empty() || static_cast<uint8_t>(in[0]) != kMetaVersion) return bad("unknown version");
  in.remove_prefix(1);
  uint64_t shard;
  int64_t swept;
  if (!GetVarint64(&in, &shard) || shard != shard_id_) return bad("shard id mismatch");
  if (!GetVarint64(&in, log_seq) || !GetVarintSigned(&in, events_rejected) ||
      !GetVarintSigned(&in, &max_ts_) || !GetVarintSigned(&in, &swept)) {
    return bad("truncated header");
  }
  swept_day_ = static_cast<int32_t>(swept);
  for (int64_t* v : {&agg_.users, &agg_.members, &agg_.buyers, &agg_.repeat_buyers, &agg_.accepted,
                     &agg_.duplicates}) {
    if (!GetVarintSigned(&in, v)) return bad("truncated counters");
  }
  for (int64_t& v : agg_.tiers) {
    if (!GetVarintSigned(&in, &v)) return bad("truncated tiers");
  }
  for (DayHist* h : {&agg_.members_by_last_active, &agg_.members_by_joined, &agg_.orders,
                     &agg_.community_orders, &agg_.gmv_fen, &agg_.refunds_fen,
                     &agg_.referred_joins}) {
    if (!h->Decode(&in)) return bad("histogram");
  }
  if (!in.empty()) return bad("trailing bytes");
  return Status::Ok();
}

Status ShardState::LoadUser(std::string_view user_id, std::string_view encoded) {
  UserState s;
  Status st = DecodeUserState(encoded, &s);
  if (!st.ok()) return st;
  users_.insert_or_assign(std::string(user_id), std::move(s));
  return Status::Ok();
}

Status ShardState::LoadSeen(int32_t day, std::string_view packed) {
  if (packed.size() % 16 != 0) return Status::Corruption("seen ids: bad length");
  for (size_t i = 0; i < packed.size(); i += 16) {
    Hash128 h;
    std::memcpy(&h.lo, packed.data() + i, 8);
    std::memcpy(&h.hi, packed.data() + i + 8, 8);
    if (seen_.try_emplace(h, day).second) seen_by_day_[day].push_back(h);
  }
  return Status::Ok();
}

void ShardState::CheckpointDone(bool ok) {
  if (!ok) {
    for (Entry* e : draining_dirty_) MarkDirty(*e);
    new_seen_.insert(new_seen_.end(), draining_seen_.begin(), draining_seen_.end());
  }
  draining_dirty_.clear();
  draining_seen_.clear();
}

void ShardState::RebuildTimers() {
  if (swept_day_ == kNoDay) return;
  for (auto& entry : users_) {
    UserState& s = entry.second;
    s.next_check_day = NextCheckDay(s, swept_day_, config_.utc_offset_ms, config_.rules);
    if (s.next_check_day != kNoDay) timers_[s.next_check_day].push_back(&entry);
  }
}

}  // namespace tierstream::state
