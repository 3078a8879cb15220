#include "state/config.h"

#include <gtest/gtest.h>

#include <string>

#include "state/user_state.h"

namespace tierstream::state {
namespace {

TEST(Config, ParsesEveryKey) {
  auto c = ParseConfig(R"({"tz":"-05:00","dedup_horizon_days":10,"max_future_ms":0,
      "tiers":{"high_value_spend":1000.5,"high_value_repeat_orders":2,"new_days":14,
               "active_interactions_7d":5}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->utc_offset_ms, -5 * 3'600'000);
  EXPECT_EQ(c->dedup_horizon_days, 10);
  EXPECT_EQ(c->max_future_ms, 0);
  EXPECT_EQ(c->rules.high_value_spend_fen, 100050);
  EXPECT_EQ(c->rules.high_value_repeat_orders, 2);
  EXPECT_EQ(c->rules.new_days, 14);
  EXPECT_EQ(c->rules.active_interactions_7d, 5);
}

TEST(Config, DefaultsAreTheSpecs) {
  auto c = ParseConfig("{}");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->utc_offset_ms, 8 * 3'600'000);
  EXPECT_EQ(c->rules.high_value_spend_fen, 50000);
  EXPECT_EQ(c->rules.new_days, 30);
  EXPECT_EQ(c->max_future_ms, 86'400'000);  // one day
}

TEST(Config, NamesTheBadKey) {
  EXPECT_EQ(ParseConfig(R"({"tz":"8"})").status().message(),
            "config: tz: must be an offset like \"+08:00\"");
  EXPECT_EQ(ParseConfig(R"({"tiers":{"new_dayz":3}})").status().message(),
            "config: tiers: unknown key 'new_dayz'");
  EXPECT_EQ(ParseConfig(R"({"dedup_horizon_days":3})").status().message(),
            "config: dedup_horizon_days: must be an integer in 7..3650");
  EXPECT_EQ(ParseConfig(R"({"max_future_ms":-1})").status().message(),
            "config: max_future_ms: must be an integer number of ms in 0..100 years (0: off)");
  EXPECT_FALSE(ParseConfig("[").ok());
}

TEST(Config, ParsesWebhooks) {
  auto c = ParseConfig(R"({"webhooks":[
      {"url":"http://127.0.0.1:9000/hooks/tiers?src=ts","to":["dormant"],
       "from":["active","null"],"secret_file":"/run/secret","max_batch":10,
       "max_delay_ms":50,"timeout_ms":1000},
      {"url":"http://hooks.example","secret_file":"s"}]})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->webhooks.size(), 2u);
  const WebhookConfig& a = c->webhooks[0];
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 9000);
  EXPECT_EQ(a.target, "/hooks/tiers?src=ts");
  EXPECT_EQ(a.to, 1u << static_cast<int>(Tier::kDormant));
  EXPECT_EQ(a.from,
            (1u << static_cast<int>(Tier::kActive)) | (1u << static_cast<int>(Tier::kNone)));
  EXPECT_EQ(a.secret_file, "/run/secret");
  EXPECT_EQ(a.max_batch, 10u);
  EXPECT_EQ(a.max_delay_ms, 50);
  EXPECT_EQ(a.timeout_ms, 1000);
  const WebhookConfig& b = c->webhooks[1];
  EXPECT_EQ(b.host, "hooks.example");
  EXPECT_EQ(b.port, 80);
  EXPECT_EQ(b.target, "/");
  EXPECT_EQ(b.to, WebhookConfig::kAnyTo);
  EXPECT_EQ(b.from, WebhookConfig::kAnyFrom);
  EXPECT_EQ(b.max_batch, 100u);
  EXPECT_EQ(b.max_delay_ms, 1000);
  EXPECT_EQ(b.timeout_ms, 10000);
  // Every tier listed is the same filter as none: the same webhook.
  auto all = ParseConfig(R"({"webhooks":[{"url":"http://h/","secret_file":"s",
      "to":["left","high_value","new","active","dormant","regular"]}]})");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->webhooks[0].to, WebhookConfig::kAnyTo);
}

TEST(Config, WebhookErrorsNameTheField) {
  const auto error = [](const std::string& hooks) {
    return std::string(ParseConfig(R"({"webhooks":)" + hooks + "}").status().message());
  };
  EXPECT_EQ(error(R"({})"), "config: webhooks: must be an array of objects");
  EXPECT_EQ(error(R"([3])"), "config: webhooks[0]: must be an object");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","retries":3}])"),
            "config: webhooks[0]: unknown key 'retries'");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s"},{"url":"http://h/","secret":"x"}])"),
            "config: webhooks[1]: unknown key 'secret'");
  EXPECT_EQ(error(R"([{"url":"http://h/"}])"),
            "config: webhooks[0].secret_file: missing (every webhook's requests are signed)");
  EXPECT_EQ(error(R"([{"secret_file":"s"}])"), "config: webhooks[0].url: missing");
  EXPECT_EQ(error(R"([{"url":"https://h/","secret_file":"s"}])"),
            "config: webhooks[0].url: https is not supported (tierstream speaks no TLS): use "
            "http:// to a local proxy");
  EXPECT_EQ(error(R"([{"url":"ftp://h/","secret_file":"s"}])"),
            "config: webhooks[0].url: must start with http://");
  EXPECT_EQ(error(R"([{"url":"http://h:0/","secret_file":"s"}])"),
            "config: webhooks[0].url: port: must be a number in 1..65535 after the host");
  EXPECT_EQ(error(R"([{"url":"http:///x","secret_file":"s"}])"),
            "config: webhooks[0].url: no host");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","max_batch":0}])"),
            "config: webhooks[0].max_batch: must be an integer in 1..1000");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","max_batch":1001}])"),
            "config: webhooks[0].max_batch: must be an integer in 1..1000");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","max_delay_ms":-1}])"),
            "config: webhooks[0].max_delay_ms: must be an integer number of ms in 0..3600000");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","timeout_ms":0}])"),
            "config: webhooks[0].timeout_ms: must be an integer number of ms in 1..3600000");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","to":["gold"]}])"),
            "config: webhooks[0].to: must be a non-empty array of tiers among left, high_value, "
            "new, active, dormant, regular");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","to":["null"]}])"),
            "config: webhooks[0].to: must be a non-empty array of tiers among left, high_value, "
            "new, active, dormant, regular");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","from":[]}])"),
            "config: webhooks[0].from: must be a non-empty array of tiers among left, "
            "high_value, new, active, dormant, regular and null (a first tier)");
  EXPECT_EQ(error(R"([{"url":"http://h/","secret_file":"s","to":["new"]},
                      {"url":"http://h/","secret_file":"t","to":["new"]}])"),
            "config: webhooks[1]: the same url and filters as webhooks[0]");
  EXPECT_EQ(std::string(ParseConfig(R"({"changes":{"enabled":false},
      "webhooks":[{"url":"http://h/","secret_file":"s"}]})")
                            .status()
                            .message()),
            "config: webhooks: they deliver the change feed, which changes.enabled turns off");
}

}  // namespace
}  // namespace tierstream::state
