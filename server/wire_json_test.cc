// The wire JSON, byte for byte: field order, null for "none", money in yuan.
#include "server/wire_json.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
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

TEST(WireJson, HealthListsEachWebhooksPositionLagAndLastError) {
  pipeline::PipelineStats stats;
  WebhookStats a;
  a.id = "00a1b2c3d4e5f607";
  a.url = "http://127.0.0.1:9000/hook";
  a.position = 1234;
  a.lag_changes = 56;
  a.lag_seconds = 1.5;
  a.consecutive_failures = 2;
  a.failures_total = 7;
  a.delivered_batches = 30;
  a.delivered_changes = 1200;
  a.last_error = "HTTP 500";
  WebhookStats b;
  b.id = "ffffffffffffffff";
  b.url = "http://h/";
  const std::vector<WebhookStats> hooks = {a, b};
  const std::string json = RenderHealthJson("ok", {}, kNoTs, &stats, &hooks);
  const std::string tail =
      R"("events_in_flight":0,"webhooks":[)"
      R"({"id":"00a1b2c3d4e5f607","url":"http://127.0.0.1:9000/hook","position":"1234",)"
      R"("lag_changes":56,"lag_seconds":1.5,"consecutive_failures":2,"failures_total":7,)"
      R"("delivered_batches":30,)"
      R"("delivered_changes":1200,"skipped_changes":0,"last_error":"HTTP 500"},)"
      R"({"id":"ffffffffffffffff","url":"http://h/","position":"0","lag_changes":0,"lag_seconds":0,)"
      R"("consecutive_failures":0,"failures_total":0,"delivered_batches":0,)"
      R"("delivered_changes":0,"skipped_changes":0,"last_error":null}]})";
  ASSERT_GE(json.size(), tail.size());
  EXPECT_EQ(json.substr(json.size() - tail.size()), tail);
  // No webhooks configured: no key.
  const std::vector<WebhookStats> none;
  EXPECT_EQ(RenderHealthJson("ok", {}, kNoTs, &stats, &none).find("webhooks"), std::string::npos);
}

TEST(WireJson, ABatchIsTheChangesAsTheFeedRendersThem) {
  state::TierChange c;
  c.user_id = "u1";
  c.seq = 2;
  c.from = state::Tier::kActive;
  c.to = state::Tier::kDormant;
  c.at_ms = 1000;
  c.cause = state::ChangeCause::kTime;
  const std::vector<std::pair<uint64_t, state::TierChange>> changes = {{7, c}, {9, c}};
  EXPECT_EQ(RenderChangeBatchJson(changes),
            R"({"changes":[)" + RenderChangeJson(7, c) + "," + RenderChangeJson(9, c) + "]}");
}

TEST(WireJson, ErrorIsOneEscapedMessage) {
  EXPECT_EQ(ErrorBody("bad \"x\""), R"({"error":"bad \"x\""})");
}

}  // namespace
}  // namespace tierstream::server
