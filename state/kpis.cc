// Sums the shards' KPI partials into one (KpiPartial::Add).
#include "state/kpis.h"

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

}  // namespace tierstream::state
