// Compares profiles and KPIs with expected values and names each difference.
#include "verify/diff.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace tierstream::verify {

namespace {

int64_t Fen(double yuan) { return std::llround(yuan * 100); }

constexpr int64_t kMissing = INT64_MIN;

// Fen as the yuan the API serves: -31378 -> "-313.78" (kMissing: "missing").
// Written here rather than shared with the service: the oracle keeps its
// own code.
std::string Yuan(int64_t fen) {
  if (fen == kMissing) return "missing";
  const uint64_t abs = fen < 0 ? 0 - static_cast<uint64_t>(fen) : static_cast<uint64_t>(fen);
  const uint64_t cents = abs % 100;
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive)
  // on "literal" + std::string&& in Release builds.
  std::string out(fen < 0 ? "-" : "");
  out += std::to_string(abs / 100);
  out += cents < 10 ? ".0" : ".";
  out += std::to_string(cents);
  return out;
}

bool SameRatio(double got, double want) {
  return std::fabs(got - want) <= 1e-9 * std::max(1.0, std::fabs(want));
}

}  // namespace

std::vector<std::string> DiffProfile(const std::string& json, const verify::Profile& want) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc)) return {"unparsable profile: " + json};
  // A missing or mistyped field becomes a value no expectation holds.
  auto num = [&](const char* k) -> int64_t {
    int64_t v = INT64_MIN;
    if (doc[k].get(v)) v = INT64_MIN;
    return v;
  };
  auto money = [&](const char* k) -> int64_t {
    double v = NAN;
    if (doc[k].get(v)) return kMissing;
    return Fen(v);
  };
  verify::Profile got;
  std::string_view text;
  got.user_id = doc["user_id"].get(text) ? "" : std::string(text);
  bool member = false;
  got.member = doc["member"].get(member) ? !want.member : member;
  got.joined_at = num("joined_at");
  if (!doc["last_active"].is_null()) got.last_active = num("last_active");
  got.interactions_7d = num("interactions_7d");
  got.interactions_30d = num("interactions_30d");
  got.orders_total = num("orders_total");
  got.orders_30d = num("orders_30d");
  got.repeat_orders = num("repeat_orders");
  got.spend_30d_fen = money("spend_30d");
  got.spend_total_fen = money("spend_total");
  got.points = num("points");
  got.referrals = num("referrals");
  text = {};
  got.tier = doc["tier"].get(text) ? "missing" : std::string(text);
  return DiffProfile(got, want);
}

std::vector<std::string> DiffProfile(const verify::Profile& got, const verify::Profile& want) {
  std::vector<std::string> d;
  auto check = [&](const char* k, int64_t g, int64_t w) {
    if (g != w)
      d.push_back(want.user_id + "." + k + ": got " + std::to_string(g) + " want " +
                  std::to_string(w));
  };
  auto check_money = [&](const char* k, int64_t g, int64_t w) {
    if (g != w) d.push_back(want.user_id + "." + k + ": got " + Yuan(g) + " want " + Yuan(w));
  };
  if (got.user_id != want.user_id) d.push_back(want.user_id + ".user_id");
  if (got.member != want.member) d.push_back(want.user_id + ".member");
  check("joined_at", got.joined_at, want.joined_at);
  if (want.last_active) {
    check("last_active", got.last_active.value_or(INT64_MIN), *want.last_active);
  } else if (got.last_active) {
    d.push_back(want.user_id + ".last_active: want null");
  }
  check("interactions_7d", got.interactions_7d, want.interactions_7d);
  check("interactions_30d", got.interactions_30d, want.interactions_30d);
  check("orders_total", got.orders_total, want.orders_total);
  check("orders_30d", got.orders_30d, want.orders_30d);
  check("repeat_orders", got.repeat_orders, want.repeat_orders);
  check_money("spend_30d", got.spend_30d_fen, want.spend_30d_fen);
  check_money("spend_total", got.spend_total_fen, want.spend_total_fen);
  check("points", got.points, want.points);
  check("referrals", got.referrals, want.referrals);
  if (got.tier != want.tier) {
    d.push_back(want.user_id + ".tier: got " + got.tier + " want " + want.tier);
  }
  return d;
}

std::vector<std::string> DiffKpis(const std::string& json, const verify::Kpis& want,
                                  bool check_counters) {
  std::vector<std::string> d;
  simdjson::dom::parser parser;
  simdjson::dom::element got;
  if (parser.parse(json).get(got)) return {"unparsable kpis: " + json};
  auto num = [&](const char* k) -> int64_t {
    int64_t v = INT64_MIN;
    if (got[k].get(v)) v = INT64_MIN;
    return v;
  };
  auto check = [&](const char* k, int64_t g, int64_t w) {
    if (g != w)
      d.push_back(std::string(k) + ": got " + std::to_string(g) + " want " + std::to_string(w));
  };
  auto money = [&](const char* k, int64_t w) {
    double v = NAN;
    const int64_t g = got[k].get(v) ? kMissing : Fen(v);
    if (g != w) d.push_back(std::string(k) + ": got " + Yuan(g) + " want " + Yuan(w));
  };
  auto ratio = [&](const char* k, double w) {
    double v = NAN;
    if (got[k].get(v) || !SameRatio(v, w)) {
      d.push_back(std::string(k) + ": got " + std::to_string(v) + " want " + std::to_string(w));
    }
  };
  if (want.as_of) check("as_of", num("as_of"), *want.as_of);
  check("users_total", num("users_total"), want.users_total);
  check("members", num("members"), want.members);
  for (const auto& [tier, n] : want.tiers) {
    int64_t v = INT64_MIN;
    if (got["tiers"][tier].get(v)) v = INT64_MIN;
    if (v != n)
      d.push_back("tiers." + tier + ": got " + std::to_string(v) + " want " + std::to_string(n));
  }
  check("mau", num("mau"), want.mau);
  check("dau", num("dau"), want.dau);
  check("new_members_30d", num("new_members_30d"), want.new_members_30d);
  check("orders_30d", num("orders_30d"), want.orders_30d);
  check("community_orders_30d", num("community_orders_30d"), want.community_orders_30d);
  money("gmv_30d", want.gmv_30d_fen);
  money("refunds_30d", want.refunds_30d_fen);
  money("net_gmv_30d", want.net_gmv_30d_fen);
  check("buyers_total", num("buyers_total"), want.buyers_total);
  check("repeat_buyers_total", num("repeat_buyers_total"), want.repeat_buyers_total);
  check("referred_joins_30d", num("referred_joins_30d"), want.referred_joins_30d);
  check("referred_joins_prev_30d", num("referred_joins_prev_30d"), want.referred_joins_prev_30d);
  ratio("monthly_active_rate", want.monthly_active_rate);
  ratio("community_order_share", want.community_order_share);
  ratio("aov_30d", want.aov_30d);
  ratio("repurchase_rate", want.repurchase_rate);
  if (want.referral_growth) {
    ratio("referral_growth", *want.referral_growth);
  } else if (!got["referral_growth"].is_null()) {
    d.push_back("referral_growth: want null");
  }
  if (check_counters) {
    check("events_accepted", num("events_accepted"), want.events_accepted);
    check("events_duplicate", num("events_duplicate"), want.events_duplicate);
    check("events_rejected", num("events_rejected"), want.events_rejected);
  }
  return d;
}

std::vector<std::string> DiffJson(const std::string& got_json, const std::string& want_json,
                                  bool skip_counters) {
  static const std::set<std::string> kMoney = {"spend_30d", "spend_total", "gmv_30d", "refunds_30d",
                                               "net_gmv_30d"};
  static const std::set<std::string> kRatio = {"monthly_active_rate", "community_order_share",
                                               "aov_30d", "repurchase_rate", "referral_growth"};
  simdjson::dom::parser pg, pw;
  simdjson::dom::element got, want;
  if (pg.parse(got_json).get(got)) return {"unparsable: " + got_json};
  if (pw.parse(want_json).get(want)) return {"unparsable expectation"};
  std::vector<std::string> d;
  simdjson::dom::object wobj;
  if (want.get(wobj)) return {"expectation is not an object"};
  for (auto [key_view, wv] : wobj) {
    std::string key(key_view);
    if (skip_counters && key.rfind("events_", 0) == 0) continue;
    simdjson::dom::element gv;
    if (got[key_view].get(gv)) {
      d.push_back(key + ": missing");
      continue;
    }
    if (kMoney.count(key)) {
      double a = NAN, b = NAN;
      if (gv.get(a) || wv.get(b) || std::llround(a * 100) != std::llround(b * 100))
        d.push_back(key + ": got " + simdjson::minify(gv) + " want " + simdjson::minify(wv));
    } else if (kRatio.count(key)) {
      double a = NAN, b = NAN;
      bool gnull = gv.is_null(), wnull = wv.is_null();
      if (gnull != wnull || (!wnull && (gv.get(a) || wv.get(b) || !SameRatio(a, b))))
        d.push_back(key + ": got " + simdjson::minify(gv) + " want " + simdjson::minify(wv));
    } else if (simdjson::minify(gv) != simdjson::minify(wv)) {
      // Objects (tiers) compare key by key: order may differ.
      simdjson::dom::object go, wo;
      if (!gv.get(go) && !wv.get(wo)) {
        for (auto [k, v] : wo) {
          simdjson::dom::element x;
          if (go[k].get(x) || simdjson::minify(x) != simdjson::minify(v))
            d.push_back(key + "." + std::string(k) + ": got " +
                        (go[k].error() ? std::string("missing") : simdjson::minify(x)) + " want " +
                        simdjson::minify(v));
        }
      } else {
        d.push_back(key + ": got " + simdjson::minify(gv) + " want " + simdjson::minify(wv));
      }
    }
  }
  return d;
}

}  // namespace tierstream::verify
