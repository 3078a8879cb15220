// A user's profile as of a day.
#include "state/profile.h"

namespace tierstream::state {

Profile MakeProfile(std::string_view user_id, const UserState& s, int32_t today,
                    const Config& config) {
  Profile out;
  const Windows w = ComputeWindows(s, today);
  out.user_id = std::string(user_id);
  out.member = s.member();
  out.joined_at = s.joined_at();
  out.last_active = s.last_active;
  out.interactions_7d = w.interactions_7d;
  out.interactions_30d = w.interactions_30d;
  out.orders_total = s.orders_total;
  out.orders_30d = w.orders_30d;
  out.repeat_orders = s.orders_total > 0 ? s.orders_total - 1 : 0;
  out.spend_30d_fen = w.spend_30d_fen;
  out.spend_total_fen = s.spend_total_fen;
  out.points = s.points;
  out.referrals = s.referrals;
  // Evaluated now, so a profile is exact even while a sweep is in progress.
  out.tier = EvaluateTier(s, w, today, config.utc_offset_ms, config.rules);
  return out;
}

}  // namespace tierstream::state
