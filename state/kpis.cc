#include "state/kpis.h"

#include "common/json_writer.h"
#include "state/user_state.h"

namespace tierstream::state {

void KpiPartial::Add(const KpiPartial& o) {
  users_total += o.users_total;
  members += o.members;
  for (size_t i = 0; i < tiers.size(); ++i) tiers[i] += o.tiers[i];
  mau += o.mau;
  dau += o.dau;
  new_members_30d += o.new_members_30d;
  orders_30d += o.orders_30d;
  community_orders_30d += o.community_orders_30d;
  gmv_30d_fen += o.gmv_30d_fen;
  refunds_30d_fen += o.refunds_30d_fen;
  buyers_total += o.buyers_total;
  repeat_buyers_total += o.repeat_buyers_total;
  referred_joins_30d += o.referred_joins_30d;
  referred_joins_prev_30d += o.referred_joins_prev_30d;
  events_accepted += o.events_accepted;
  events_duplicate += o.events_duplicate;
  events_rejected += o.events_rejected;
}

namespace {
double Ratio(double num, int64_t den) { return den == 0 ? 0.0 : num / static_cast<double>(den); }
}  // namespace

std::string RenderKpisJson(const KpiPartial& k, int64_t as_of) {
  std::string out;
  out.reserve(1024);
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("as_of");
  if (as_of == kNoTs) {
    w.Null();
  } else {
    w.Int(as_of);
  }
  w.Key("users_total").Int(k.users_total);
  w.Key("members").Int(k.members);
  w.Key("tiers").BeginObject();
  for (int i = 0; i < kTierCount; ++i) {
    w.Key(TierName(static_cast<Tier>(i))).Int(k.tiers[static_cast<size_t>(i)]);
  }
  w.EndObject();
  w.Key("mau").Int(k.mau);
  w.Key("dau").Int(k.dau);
  w.Key("monthly_active_rate").Double(Ratio(static_cast<double>(k.mau), k.members));
  w.Key("new_members_30d").Int(k.new_members_30d);
  w.Key("orders_30d").Int(k.orders_30d);
  w.Key("community_orders_30d").Int(k.community_orders_30d);
  w.Key("community_order_share")
      .Double(Ratio(static_cast<double>(k.community_orders_30d), k.orders_30d));
  w.Key("gmv_30d").Yuan(k.gmv_30d_fen);
  w.Key("refunds_30d").Yuan(k.refunds_30d_fen);
  w.Key("net_gmv_30d").Yuan(k.gmv_30d_fen - k.refunds_30d_fen);
  w.Key("aov_30d").Double(Ratio(static_cast<double>(k.gmv_30d_fen) / 100.0, k.orders_30d));
  w.Key("buyers_total").Int(k.buyers_total);
  w.Key("repeat_buyers_total").Int(k.repeat_buyers_total);
  w.Key("repurchase_rate")
      .Double(Ratio(static_cast<double>(k.repeat_buyers_total), k.buyers_total));
  w.Key("referred_joins_30d").Int(k.referred_joins_30d);
  w.Key("referred_joins_prev_30d").Int(k.referred_joins_prev_30d);
  w.Key("referral_growth");
  if (k.referred_joins_prev_30d == 0) {
    w.Null();
  } else {
    w.Double(static_cast<double>(k.referred_joins_30d - k.referred_joins_prev_30d) /
             static_cast<double>(k.referred_joins_prev_30d));
  }
  w.Key("events_accepted").Int(k.events_accepted);
  w.Key("events_duplicate").Int(k.events_duplicate);
  w.Key("events_rejected").Int(k.events_rejected);
  w.EndObject();
  return out;
}

}  // namespace tierstream::state
