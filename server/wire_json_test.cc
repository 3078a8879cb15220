// The wire JSON, byte for byte: field order, null for "none", money in yuan.
#include "server/wire_json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tierstream::server {
namespace {

state::Profile SomeProfile() {
  state::Profile p;
  p.user_id = "u\"1";
  p.joined_at = 1763971200000;
  p.orders_total = 2;
  p.repeat_orders = 1;
  p.spend_30d_fen = 12950;
  p.spend_total_fen = -5;
  p.tier = state::Tier::kNew;
  return p;
}

TEST(WireJson, ProfileRendersEveryFieldInOrderWithNullForNoActivity) {
  EXPECT_EQ(server::RenderProfileJson(SomeProfile(), 1763971200001),
            R"({"user_id":"u\"1","as_of":1763971200001,"member":true,"joined_at":1763971200000,)"
            R"("last_active":null,"interactions_7d":0,"interactions_30d":0,"orders_total":2,)"
            R"("orders_30d":0,"repeat_orders":1,"spend_30d":129.50,"spend_total":-0.05,)"
            R"("points":0,"referrals":0,"tier":"new"})");
}

TEST(WireJson, KpisBeforeTheFirstEventAreAsOfNullWithZeroRatios) {
  const std::string body = RenderKpisJson(pipeline::KpiReport{});
  EXPECT_EQ(body.rfind(R"({"as_of":null,"users_total":0,"members":0,"tiers":{"left":0,)", 0), 0u)
      << body;
  EXPECT_NE(body.find(R"("monthly_active_rate":0,)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("referral_growth":null,)"), std::string::npos) << body;
}

TEST(WireJson, TierPageNamesTheNextAfterOnlyWhenMoreFollow) {
  pipeline::TierPage page;
  page.user_ids = {"a", "b"};
  EXPECT_EQ(RenderTierPageJson(state::Tier::kDormant, page),
            R"({"tier":"dormant","users":["a","b"],"next_after":null})");
  page.more = true;
  EXPECT_EQ(RenderTierPageJson(state::Tier::kDormant, page),
            R"({"tier":"dormant","users":["a","b"],"next_after":"b"})");
  std::string lines;
  AppendTierPageNdjson(page, false, &lines);
  EXPECT_EQ(lines, "{\"user_id\":\"a\"}\n{\"user_id\":\"b\"}\n");
  page.user_ids = {"u\"1"};
  page.profiles = {pipeline::ProfileReport{SomeProfile(), 7, Status::Ok()}};
  lines.clear();
  AppendTierPageNdjson(page, true, &lines);
  EXPECT_EQ(lines, server::RenderProfileJson(SomeProfile(), 7) + "\n");
}

TEST(WireJson, HealthHasFiguresOnlyOnceThePipelineIsOpen) {
  EXPECT_EQ(RenderHealthJson("starting", {"recovering"}, kNoTs, nullptr),
            R"({"status":"starting","reasons":["recovering"]})");
  pipeline::PipelineStats stats;
  stats.shards = 2;
  stats.max_resident_users = 4;
  stats.events_in_flight = 3;
  EXPECT_EQ(RenderHealthJson("ok", {}, kNoTs, &stats),
            R"({"status":"ok","as_of":null,"shards":2,"resident_users":0,)"
            R"("max_resident_users":4,"reloads":0,"warm_users":0,"warm_bytes":0,)"
            R"("warm_reloads":0,"dirty_users":0,"remembered_event_ids":0,)"
            R"("spilled_event_ids":0,"event_id_runs":0,"events_beyond_horizon":0,)"
            R"("events_in_flight":3})");
}

TEST(WireJson, ErrorIsOneEscapedMessage) {
  EXPECT_EQ(ErrorBody("bad \"x\""), R"({"error":"bad \"x\""})");
}

}  // namespace
}  // namespace tierstream::server
