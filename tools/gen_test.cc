#include "tools/gen.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

namespace tierstream::tools {
namespace {

std::string Generate(const GenOptions& o) {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buf, &size);
  EXPECT_TRUE(GenerateStream(o, f));
  std::fclose(f);
  std::string s(buf, size);
  std::free(buf);
  return s;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(s.substr(start, nl - start));
  }
  return out;
}

GenOptions Options() {
  GenOptions o;
  o.users = 500;
  o.events = 20000;
  o.days = 30;
  o.seed = 3;
  o.duplicate_rate = 0.02;
  o.disorder_rate = 0.05;
  return o;
}

TEST(Gen, IsDeterministicAndWritesTheRequestedLines) {
  std::string a = Generate(Options());
  EXPECT_EQ(a, Generate(Options()));
  EXPECT_EQ(Lines(a).size(), 20000u);
  GenOptions other = Options();
  other.seed = 4;
  EXPECT_NE(a, Generate(other));
}

TEST(Gen, EveryLineIsAValidEventWithItsRequiredFields) {
  simdjson::dom::parser parser;
  std::map<std::string, int> types;
  std::set<std::string> ids;
  size_t duplicates = 0, out_of_order = 0, rfc3339 = 0, referrals = 0;
  int64_t prev_ts = 0;
  for (const std::string& line : Lines(Generate(Options()))) {
    simdjson::dom::object obj;
    ASSERT_FALSE(parser.parse(line).get(obj)) << line;
    std::string_view id, type, user;
    ASSERT_FALSE(obj["event_id"].get(id));
    ASSERT_FALSE(obj["type"].get(type));
    ASSERT_FALSE(obj["user_id"].get(user));
    ASSERT_FALSE(obj["ts"].error());
    if (!ids.insert(std::string(id)).second) {
      ++duplicates;
      continue;
    }
    ++types[std::string(type)];
    int64_t ts;
    if (obj["ts"].get(ts)) {
      ++rfc3339;
    } else {
      if (ts < prev_ts) ++out_of_order;
      prev_ts = ts;
    }
    if (type == "order" || type == "refund") {
      double amount;
      ASSERT_FALSE(obj["amount"].get(amount)) << line;
      ASSERT_GE(amount, 0);
      ASSERT_FALSE(obj["order_id"].error()) << line;
    }
    if (type == "join" && !obj["referrer_id"].error()) ++referrals;
  }
  EXPECT_GT(duplicates, 200u);
  EXPECT_LT(duplicates, 700u);
  EXPECT_GT(out_of_order, 100u);
  EXPECT_GT(rfc3339, 1000u);
  EXPECT_GT(referrals, 20u);
  for (const char* t :
       {"join", "leave", "message", "reaction", "checkin", "share", "order", "refund"}) {
    EXPECT_GT(types[t], 0) << t;
  }
  EXPECT_GT(types["message"], types["order"]);
  EXPECT_GT(types["order"], types["refund"]);
}

TEST(Gen, InvalidRateProducesRejectableLines) {
  GenOptions o = Options();
  o.invalid_rate = 0.05;
  simdjson::dom::parser parser;
  size_t bad = 0;
  for (const std::string& line : Lines(Generate(o))) {
    simdjson::dom::object obj;
    std::string_view user;
    int64_t ts;
    std::string_view ts_text;
    if (parser.parse(line).get(obj) || obj["user_id"].get(user) ||
        (obj["ts"].get(ts) && (obj["ts"].get(ts_text) || ts_text == "yesterday")) ||
        line.find("\"amount\":-") != std::string::npos ||
        line.find("\"poke\"") != std::string::npos) {
      ++bad;
    }
  }
  EXPECT_GT(bad, 600u);
  EXPECT_LT(bad, 1400u);
}

TEST(Gen, ValidateNamesTheFlagThatIsOutOfRange) {
  EXPECT_TRUE(ValidateGenOptions(GenOptions{}).ok());
  auto message = [](void (*change)(GenOptions*)) {
    GenOptions o;
    change(&o);
    return ValidateGenOptions(o).ToString();
  };
  EXPECT_EQ(message([](GenOptions* o) { o->duplicate_rate = 1.5; }),
            "--duplicate-rate: must be in 0..1, got 1.5");
  EXPECT_EQ(message([](GenOptions* o) { o->disorder_rate = -0.25; }),
            "--disorder-rate: must be in 0..1, got -0.25");
  EXPECT_EQ(message([](GenOptions* o) { o->invalid_rate = std::nan(""); }),
            "--invalid-rate: must be in 0..1, got nan");
  EXPECT_EQ(message([](GenOptions* o) { o->users = 0; }), "--users: must be at least 1, got 0");
  EXPECT_EQ(message([](GenOptions* o) { o->days = 0; }), "--days: must be at least 1, got 0");
  EXPECT_EQ(message([](GenOptions* o) { o->days = 100000; }).rfind("--days: at most ", 0), 0u);
  EXPECT_EQ(message([](GenOptions* o) { o->end_ms = 0; }).rfind("--end-ms: ", 0), 0u);
  GenOptions edge;
  edge.duplicate_rate = 1;
  edge.disorder_rate = 0;
  edge.days = 1;
  edge.users = 1;
  EXPECT_TRUE(ValidateGenOptions(edge).ok());
}

}  // namespace
}  // namespace tierstream::tools
