#include "state/config.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tierstream::state
