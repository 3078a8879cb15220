#include "verify/batch_eval.h"

#include <algorithm>

namespace tierstream::verify {

using ingest::EventType;

BatchEvaluator::BatchEvaluator(int64_t utc_offset_ms, Thresholds thresholds)
    : offset_(utc_offset_ms), thresholds_(thresholds) {}

int64_t BatchEvaluator::Day(int64_t ts) const {
  int64_t x = ts + offset_;
  int64_t d = x / 86'400'000;
  return x % 86'400'000 < 0 ? d - 1 : d;
}

void BatchEvaluator::Add(const ingest::Event& e) {
  if (!ids_.insert(std::string(e.event_id)).second) {
    ++duplicates_;
    return;
  }
  Stored s{std::string(e.user_id), std::string(e.referrer_id), e.type, e.ts_ms, e.amount_fen,
           e.community};
  events_.push_back(s);
  own_[s.user_id].push_back(events_.size() - 1);
  if (s.type == EventType::kJoin && !s.referrer_id.empty() && s.referrer_id != s.user_id) {
    referred_[s.referrer_id].push_back(events_.size() - 1);
  }
}

Profile BatchEvaluator::Evaluate(const std::string& user, int64_t today) const {
  Profile p;
  p.user_id = user;
  static const std::vector<size_t> kNone;
  auto own_it = own_.find(user);
  const std::vector<size_t>& own = own_it == own_.end() ? kNone : own_it->second;
  auto ref_it = referred_.find(user);
  const std::vector<size_t>& refs = ref_it == referred_.end() ? kNone : ref_it->second;

  auto in_last = [&](int64_t ts, int64_t days) {
    int64_t d = Day(ts);
    return d >= today - (days - 1) && d <= today;
  };
  bool have_membership = false, latest_is_leave = false;
  int64_t latest_membership = 0;
  std::optional<int64_t> first_join, first_own, first_ref;
  for (size_t i : own) {
    const Stored& e = events_[i];
    first_own = first_own ? std::min(*first_own, e.ts) : e.ts;
    const bool interaction = e.type == EventType::kMessage || e.type == EventType::kReaction ||
                             e.type == EventType::kCheckin || e.type == EventType::kShare;
    if (e.type == EventType::kJoin || e.type == EventType::kLeave) {
      const bool leave = e.type == EventType::kLeave;
      if (!have_membership || e.ts > latest_membership ||
          (e.ts == latest_membership && leave)) {
        have_membership = true;
        latest_membership = e.ts;
        latest_is_leave = leave;
      }
      if (!leave) first_join = first_join ? std::min(*first_join, e.ts) : e.ts;
    }
    if (interaction || e.type == EventType::kOrder) {
      p.last_active = p.last_active ? std::max(*p.last_active, e.ts) : e.ts;
    }
    if (interaction) {
      if (in_last(e.ts, 7)) ++p.interactions_7d;
      if (in_last(e.ts, 30)) ++p.interactions_30d;
    }
    switch (e.type) {
      case EventType::kMessage: p.points += 1; break;
      case EventType::kReaction: p.points += 1; break;
      case EventType::kCheckin: p.points += 2; break;
      case EventType::kShare: p.points += 3; break;
      case EventType::kOrder:
        ++p.orders_total;
        if (in_last(e.ts, 30)) {
          ++p.orders_30d;
          p.spend_30d_fen += e.fen;
        }
        p.spend_total_fen += e.fen;
        p.points += e.fen / 100;
        break;
      case EventType::kRefund:
        if (in_last(e.ts, 30)) p.spend_30d_fen -= e.fen;
        p.spend_total_fen -= e.fen;
        p.points -= e.fen / 100;
        break;
      default: break;
    }
  }
  for (size_t i : refs) {
    const Stored& e = events_[i];
    first_ref = first_ref ? std::min(*first_ref, e.ts) : e.ts;
    ++p.referrals;
    p.points += 10;
  }
  p.member = !(have_membership && latest_is_leave);
  p.joined_at = first_join ? *first_join : first_own ? *first_own : first_ref.value_or(0);
  p.repeat_orders = std::max<int64_t>(0, p.orders_total - 1);
  if (!p.member) {
    p.tier = "left";
  } else if (p.spend_30d_fen >= thresholds_.high_value_spend_fen &&
             p.repeat_orders >= thresholds_.high_value_repeat_orders) {
    p.tier = "high_value";
  } else if (today - Day(p.joined_at) < thresholds_.new_days) {
    p.tier = "new";
  } else if (p.interactions_7d >= thresholds_.active_interactions_7d) {
    p.tier = "active";
  } else if (p.interactions_7d == 0) {
    p.tier = "dormant";
  } else {
    p.tier = "regular";
  }
  return p;
}

std::map<std::string, Profile> BatchEvaluator::Profiles() const {
  std::map<std::string, Profile> out;
  if (events_.empty()) return out;
  int64_t t = events_[0].ts;
  for (const Stored& e : events_) t = std::max(t, e.ts);
  const int64_t today = Day(t);
  for (const auto& [user, _] : own_) out[user] = Evaluate(user, today);
  for (const auto& [user, _] : referred_) {
    if (!out.count(user)) out[user] = Evaluate(user, today);
  }
  return out;
}

Kpis BatchEvaluator::ComputeKpis() const {
  Kpis k;
  for (const char* t : {"left", "high_value", "new", "active", "dormant", "regular"}) k.tiers[t] = 0;
  k.events_accepted = static_cast<int64_t>(events_.size());
  k.events_duplicate = duplicates_;
  k.events_rejected = rejected_;
  if (events_.empty()) return k;
  int64_t t = events_[0].ts;
  for (const Stored& e : events_) t = std::max(t, e.ts);
  k.as_of = t;
  const int64_t today = Day(t);
  auto day_in = [&](int64_t d, int64_t from, int64_t to) { return d >= from && d <= to; };
  for (const auto& [user, p] : Profiles()) {
    ++k.users_total;
    ++k.tiers[p.tier];
    if (p.orders_total >= 1) ++k.buyers_total;
    if (p.orders_total >= 2) ++k.repeat_buyers_total;
    if (!p.member) continue;
    ++k.members;
    if (p.last_active && day_in(Day(*p.last_active), today - 29, today)) ++k.mau;
    if (p.last_active && Day(*p.last_active) == today) ++k.dau;
    if (day_in(Day(p.joined_at), today - 29, today)) ++k.new_members_30d;
  }
  for (const Stored& e : events_) {
    const int64_t d = Day(e.ts);
    const bool last30 = day_in(d, today - 29, today);
    if (e.type == EventType::kOrder && last30) {
      ++k.orders_30d;
      if (e.community) ++k.community_orders_30d;
      k.gmv_30d_fen += e.fen;
    }
    if (e.type == EventType::kRefund && last30) k.refunds_30d_fen += e.fen;
    if (e.type == EventType::kJoin && !e.referrer_id.empty() && e.referrer_id != e.user_id) {
      if (last30) ++k.referred_joins_30d;
      if (day_in(d, today - 59, today - 30)) ++k.referred_joins_prev_30d;
    }
  }
  k.net_gmv_30d_fen = k.gmv_30d_fen - k.refunds_30d_fen;
  auto ratio = [](double a, int64_t b) { return b == 0 ? 0.0 : a / static_cast<double>(b); };
  k.monthly_active_rate = ratio(static_cast<double>(k.mau), k.members);
  k.community_order_share = ratio(static_cast<double>(k.community_orders_30d), k.orders_30d);
  k.aov_30d = ratio(static_cast<double>(k.gmv_30d_fen) / 100.0, k.orders_30d);
  k.repurchase_rate = ratio(static_cast<double>(k.repeat_buyers_total), k.buyers_total);
  if (k.referred_joins_prev_30d != 0) {
    k.referral_growth = static_cast<double>(k.referred_joins_30d - k.referred_joins_prev_30d) /
                        static_cast<double>(k.referred_joins_prev_30d);
  }
  return k;
}

}  // namespace tierstream::verify
