// What `tierstream verify` prints for a difference: the field, what the data
// dir holds and what the raw events say, money in yuan.
#include "verify/diff.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tierstream::verify {
namespace {

bool Has(const std::vector<std::string>& lines, const std::string& line) {
  for (const auto& l : lines) {
    if (l == line) return true;
  }
  return false;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TEST(Diff, ProfileMoneyIsShownInYuanWithGotAndWant) {
  Profile want;
  want.user_id = "u1";
  want.joined_at = 1;
  want.last_active = 2;
  want.orders_total = 2;
  want.repeat_orders = 1;
  want.spend_30d_fen = 41785;
  want.spend_total_fen = 41785;
  want.tier = "new";
  const std::string got =
      R"({"user_id":"u1","as_of":3,"member":true,"joined_at":1,"last_active":2,"interactions_7d":0,)"
      R"("interactions_30d":0,"orders_total":2,"orders_30d":0,"repeat_orders":1,"spend_30d":0.05,)"
      R"("spend_total":-313.78,"points":0,"referrals":0,"tier":"new"})";
  auto d = DiffProfile(got, want);
  EXPECT_TRUE(Has(d, "u1.spend_total: got -313.78 want 417.85")) << Join(d);
  EXPECT_TRUE(Has(d, "u1.spend_30d: got 0.05 want 417.85")) << Join(d);
  EXPECT_EQ(d.size(), 2u) << Join(d);  // nothing else differs
}

TEST(Diff, ProfileValuesCompareFieldByFieldAsTheirJsonDoes) {
  Profile want;
  want.user_id = "u1";
  want.joined_at = 1;
  want.last_active = 2;
  want.spend_total_fen = 41785;
  want.tier = "new";
  Profile got = want;
  EXPECT_TRUE(DiffProfile(got, want).empty());
  got.last_active.reset();
  got.spend_total_fen = -31378;
  got.tier = "dormant";
  auto d = DiffProfile(got, want);
  EXPECT_TRUE(Has(d, "u1.last_active: got -9223372036854775808 want 2")) << Join(d);
  EXPECT_TRUE(Has(d, "u1.spend_total: got -313.78 want 417.85")) << Join(d);
  EXPECT_TRUE(Has(d, "u1.tier: got dormant want new")) << Join(d);
  EXPECT_EQ(d.size(), 3u) << Join(d);
  // A profile missing its tier says so.
  d = DiffProfile(std::string(R"({"user_id":"u1","member":true,"joined_at":1,"last_active":2,)"
                              R"("interactions_7d":0,"interactions_30d":0,"orders_total":0,)"
                              R"("orders_30d":0,"repeat_orders":0,"spend_30d":0,)"
                              R"("spend_total":417.85,"points":0,"referrals":0})"),
                  want);
  EXPECT_TRUE(Has(d, "u1.tier: got missing want new")) << Join(d);
  EXPECT_EQ(d.size(), 1u) << Join(d);
}

TEST(Diff, KpiMoneyIsShownInYuanWithGotAndWant) {
  Kpis want;
  want.gmv_30d_fen = 12950;
  want.refunds_30d_fen = -5;
  want.net_gmv_30d_fen = 13000;
  const std::string got =
      R"({"users_total":0,"members":0,"mau":0,"dau":0,"new_members_30d":0,"orders_30d":0,)"
      R"("community_orders_30d":0,"gmv_30d":129.5,"refunds_30d":0,"net_gmv_30d":1.5,)"
      R"("buyers_total":0,"repeat_buyers_total":0,"referred_joins_30d":0,)"
      R"("referred_joins_prev_30d":0,"monthly_active_rate":0,"community_order_share":0,)"
      R"("aov_30d":0,"repurchase_rate":0,"referral_growth":null})";
  auto d = DiffKpis(got, want, false);
  EXPECT_FALSE(Has(d, "gmv_30d: got 129.50 want 129.50")) << Join(d);
  EXPECT_TRUE(Has(d, "refunds_30d: got 0.00 want -0.05")) << Join(d);
  EXPECT_TRUE(Has(d, "net_gmv_30d: got 1.50 want 130.00")) << Join(d);
  // A missing field says so.
  d = DiffKpis("{}", want, false);
  EXPECT_TRUE(Has(d, "gmv_30d: got missing want 129.50")) << Join(d);
}

}  // namespace
}  // namespace tierstream::verify
