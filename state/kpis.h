// KpiPartial: one shard's contribution to the KPIs of SPEC §5 as of a day D,
// summed across shards (the server renders the sum: server/wire_json.h).
// Plain value.
#ifndef TIERSTREAM_STATE_KPIS_H_
#define TIERSTREAM_STATE_KPIS_H_

#include <array>
#include <cstdint>
#include <string>

#include "common/time.h"

namespace tierstream::state {

struct KpiPartial {
  int64_t users_total = 0;
  int64_t members = 0;
  std::array<int64_t, 6> tiers{};
  int64_t mau = 0;
  int64_t dau = 0;
  int64_t new_members_30d = 0;
  int64_t orders_30d = 0;
  int64_t community_orders_30d = 0;
  int64_t gmv_30d_fen = 0;
  int64_t refunds_30d_fen = 0;
  int64_t buyers_total = 0;
  int64_t repeat_buyers_total = 0;
  int64_t referred_joins_30d = 0;
  int64_t referred_joins_prev_30d = 0;
  int64_t events_accepted = 0;
  int64_t events_duplicate = 0;
  int64_t events_rejected = 0;

  void Add(const KpiPartial& o);
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_KPIS_H_
