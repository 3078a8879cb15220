// The batch evaluator: SPEC §2–§5 computed from all events at once, as a
// test oracle independent of the streaming path.
#include "verify/batch_eval.h"

#include <algorithm>

#include "common/time.h"

namespace tierstream::verify {

using ingest::EventType;

namespace {

bool IsInteractionType(EventType t) {
  return t == EventType::kMessage || t == EventType::kReaction || t == EventType::kCheckin ||
         t == EventType::kShare;
}

// SPEC §3 points per event type, for the user's own events.
int64_t OwnPoints(EventType t, int64_t fen) {
  switch (t) {
    case EventType::kMessage:
      return 1;
    case EventType::kReaction:
      return 1;
    case EventType::kCheckin:
      return 2;
    case EventType::kShare:
      return 3;
    case EventType::kOrder:
      return fen / 100;  // floor(yuan); fen >= 0
    case EventType::kRefund:
      return -(fen / 100);
    default:
      return 0;
  }
}

void TakeMin(std::optional<int64_t>& slot, int64_t v) {
  if (!slot || v < *slot) slot = v;
}
void TakeMax(std::optional<int64_t>& slot, int64_t v) {
  if (!slot || v > *slot) slot = v;
}

// The days of SPEC §2 windows, relative to D = day(T).
struct Windows {
  int32_t today;
  bool Last7(int32_t d) const { return d >= today - 6 && d <= today; }
  bool Last30(int32_t d) const { return d >= today - 29 && d <= today; }
  bool Prev30(int32_t d) const { return d >= today - 59 && d <= today - 30; }
};

// Everything gathered about one user before the derived fields are set.
struct Accumulator {
  Profile p;
  std::optional<int64_t> latest_membership_ts;
  bool latest_membership_is_leave = false;
  std::optional<int64_t> first_own_join, first_own_event, first_referring_join;
};

double Ratio(double num, int64_t den) { return den == 0 ? 0.0 : num / static_cast<double>(den); }

}  // namespace

BatchEvaluator::BatchEvaluator(int64_t utc_offset_ms, Thresholds thresholds)
    : offset_ms_(utc_offset_ms), thresholds_(thresholds) {}

int32_t BatchEvaluator::Day(int64_t ts) const { return DayOf(ts, offset_ms_); }

int32_t BatchEvaluator::Intern(std::string_view user_id) {
  auto [it, inserted] =
      user_index_.try_emplace(std::string(user_id), static_cast<int32_t>(user_names_.size()));
  if (inserted) user_names_.emplace_back(user_id);
  return it->second;
}

void BatchEvaluator::Add(const ingest::Event& e) {
  if (e.type == EventType::kReferralCredit) return;  // internal to the streaming path
  if (!seen_ids_.emplace(e.event_id).second) {
    ++duplicates_;
    return;
  }
  Stored s;
  s.ts = e.ts_ms;
  s.fen = e.amount_fen;
  s.type = e.type;
  s.community = e.community;
  s.user = Intern(e.user_id);
  if (e.type == EventType::kJoin && !e.referrer_id.empty() && e.referrer_id != e.user_id) {
    s.referrer = Intern(e.referrer_id);  // creates the referrer's profile if unseen
  }
  events_.push_back(s);
  TakeMax(max_ts_, e.ts_ms);
}

void BatchEvaluator::AddRejected(int64_t n) { rejected_ += n; }

std::map<std::string, Profile> BatchEvaluator::Profiles() const {
  std::map<std::string, Profile> out;
  if (!max_ts_) return out;
  const Windows w{Day(*max_ts_)};

  std::vector<Accumulator> acc(user_names_.size());
  for (const Stored& e : events_) {
    // The user's own event.
    Accumulator& a = acc[static_cast<size_t>(e.user)];
    const int32_t d = Day(e.ts);
    TakeMin(a.first_own_event, e.ts);
    a.p.points += OwnPoints(e.type, e.fen);
    if (IsInteractionType(e.type)) {
      TakeMax(a.p.last_active, e.ts);
      if (w.Last7(d)) ++a.p.interactions_7d;
      if (w.Last30(d)) ++a.p.interactions_30d;
    }
    if (e.type == EventType::kOrder) {
      TakeMax(a.p.last_active, e.ts);
      ++a.p.orders_total;
      if (w.Last30(d)) ++a.p.orders_30d;
      a.p.spend_total_fen += e.fen;
      if (w.Last30(d)) a.p.spend_30d_fen += e.fen;
    }
    if (e.type == EventType::kRefund) {
      a.p.spend_total_fen -= e.fen;
      if (w.Last30(d)) a.p.spend_30d_fen -= e.fen;
    }
    if (e.type == EventType::kJoin || e.type == EventType::kLeave) {
      const bool leave = e.type == EventType::kLeave;
      const bool later = !a.latest_membership_ts || e.ts > *a.latest_membership_ts;
      const bool tie_won_by_leave =
          a.latest_membership_ts && e.ts == *a.latest_membership_ts && leave;
      if (later || tie_won_by_leave) {
        a.latest_membership_ts = e.ts;
        a.latest_membership_is_leave = leave;
      }
      if (!leave) TakeMin(a.first_own_join, e.ts);
    }
    // The referrer named by a (non-self) join.
    if (e.referrer != kNoUser) {
      Accumulator& r = acc[static_cast<size_t>(e.referrer)];
      ++r.p.referrals;
      r.p.points += 10;
      TakeMin(r.first_referring_join, e.ts);
    }
  }

  for (size_t i = 0; i < acc.size(); ++i) {
    Accumulator& a = acc[i];
    Profile& p = a.p;
    p.user_id = user_names_[i];
    p.member = !(a.latest_membership_ts && a.latest_membership_is_leave);
    if (a.first_own_join) {
      p.joined_at = *a.first_own_join;
    } else if (a.first_own_event) {
      p.joined_at = *a.first_own_event;
    } else {
      p.joined_at = a.first_referring_join.value_or(0);  // always set: the user is named somewhere
    }
    p.repeat_orders = std::max<int64_t>(0, p.orders_total - 1);
    if (!p.member) {
      p.tier = "left";
    } else if (p.spend_30d_fen >= thresholds_.high_value_spend_fen &&
               p.repeat_orders >= thresholds_.high_value_repeat_orders) {
      p.tier = "high_value";
    } else if (static_cast<int64_t>(w.today) - Day(p.joined_at) < thresholds_.new_days) {
      p.tier = "new";
    } else if (p.interactions_7d >= thresholds_.active_interactions_7d) {
      p.tier = "active";
    } else if (p.interactions_7d == 0) {
      p.tier = "dormant";
    } else {
      p.tier = "regular";
    }
    out.emplace(p.user_id, std::move(p));
  }
  return out;
}

Kpis BatchEvaluator::ComputeKpis() const {
  Kpis k;
  for (const char* t : {"left", "high_value", "new", "active", "dormant", "regular"})
    k.tiers[t] = 0;
  k.events_accepted = static_cast<int64_t>(events_.size());
  k.events_duplicate = duplicates_;
  k.events_rejected = rejected_;
  if (!max_ts_) return k;
  k.as_of = *max_ts_;
  const Windows w{Day(*max_ts_)};

  // Per-user KPIs, from the profiles.
  for (const auto& [user, p] : Profiles()) {
    ++k.users_total;
    ++k.tiers[p.tier];
    if (p.orders_total >= 1) ++k.buyers_total;
    if (p.orders_total >= 2) ++k.repeat_buyers_total;
    if (!p.member) continue;
    ++k.members;
    // last_active is the latest interaction or order, and never after T: the
    // user had one in a window ending on D iff the latest one falls in it.
    if (p.last_active && w.Last30(Day(*p.last_active))) ++k.mau;
    if (p.last_active && Day(*p.last_active) == w.today) ++k.dau;
    if (w.Last30(Day(p.joined_at))) ++k.new_members_30d;
  }

  // Per-event KPIs.
  for (const Stored& e : events_) {
    const int32_t d = Day(e.ts);
    if (e.type == EventType::kOrder && w.Last30(d)) {
      ++k.orders_30d;
      if (e.community) ++k.community_orders_30d;
      k.gmv_30d_fen += e.fen;
    }
    if (e.type == EventType::kRefund && w.Last30(d)) k.refunds_30d_fen += e.fen;
    if (e.referrer != kNoUser) {  // a join with a non-self referrer
      if (w.Last30(d)) ++k.referred_joins_30d;
      if (w.Prev30(d)) ++k.referred_joins_prev_30d;
    }
  }
  k.net_gmv_30d_fen = k.gmv_30d_fen - k.refunds_30d_fen;

  k.monthly_active_rate = Ratio(static_cast<double>(k.mau), k.members);
  k.community_order_share = Ratio(static_cast<double>(k.community_orders_30d), k.orders_30d);
  k.aov_30d = Ratio(static_cast<double>(k.gmv_30d_fen) / 100.0, k.orders_30d);
  k.repurchase_rate = Ratio(static_cast<double>(k.repeat_buyers_total), k.buyers_total);
  if (k.referred_joins_prev_30d != 0) {
    k.referral_growth = static_cast<double>(k.referred_joins_30d - k.referred_joins_prev_30d) /
                        static_cast<double>(k.referred_joins_prev_30d);
  }
  return k;
}

}  // namespace tierstream::verify
