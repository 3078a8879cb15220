// A user's profile as of a day, and its JSON rendering.
#include "state/profile.h"

#include "common/json_writer.h"

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

}  // namespace tierstream::state
