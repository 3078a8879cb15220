// The /metrics exposition from fixed figures: the values land in the
// series README names, histograms are cumulative with a +Inf bucket equal
// to their count, and every family follows Prometheus' naming rules
// (`promtool check metrics` on a live scrape: tests/metrics_test.cc).
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace tierstream::server {
namespace {

// The sample lines of `text` as "name{labels}" -> value text.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> samples;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    samples[line.substr(0, space)] = line.substr(space + 1);
  }
  return samples;
}

// "# TYPE name type" lines: name -> type.
std::map<std::string, std::string> Types(const std::string& text) {
  std::map<std::string, std::string> types;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream fields(line.substr(7));
    std::string name, type;
    fields >> name >> type;
    types[name] = type;
  }
  return types;
}

MetricsInput SomeInput(const IngestMetrics* ingest) {
  MetricsInput in;
  in.ingest = ingest;
  in.ready = true;
  in.stats.shards = 2;
  in.stats.resident_users = 7;
  in.stats.reloads = 5;
  in.stats.warm_reloads = 3;
  in.stats.events_in_flight = 12;
  in.stats.store.state.live_sst_bytes = 4096;
  in.stats.store.journal.write_stall_micros = 1'500'000;
  in.stats.disk_free_bytes = 1ull << 40;
  in.kpis.as_of = 1763971200500;
  in.kpis.kpis.members = 3;
  in.kpis.kpis.tiers[static_cast<size_t>(state::Tier::kNew)] = 2;
  in.kpis.kpis.gmv_30d_fen = 123'456'789'012;  // 1.2 billion yuan, exactly
  in.recovery.seconds = 0.25;
  return in;
}

TEST(Metrics, FiguresLandInTheirSeries) {
  IngestMetrics ingest;
  pipeline::BatchOutcome outcome;
  outcome.accepted = 40;
  outcome.duplicates = 2;
  outcome.rejected = 3;
  outcome.rejected_by_reason[static_cast<size_t>(ingest::RejectReason::kInvalidJson)] = 2;
  outcome.rejected_by_reason[static_cast<size_t>(ingest::RejectReason::kFutureTs)] = 1;
  ingest.tcp.Count(outcome, std::chrono::milliseconds(3));
  const std::string text = RenderMetrics(SomeInput(&ingest));
  const auto s = Samples(text);
  EXPECT_EQ(s.at(R"(tierstream_ingest_events_total{source="tcp",outcome="accepted"})"), "40");
  EXPECT_EQ(s.at(R"(tierstream_ingest_events_total{source="tcp",outcome="duplicate"})"), "2");
  EXPECT_EQ(s.at(R"(tierstream_ingest_events_total{source="tcp",outcome="rejected"})"), "3");
  EXPECT_EQ(s.at(R"(tierstream_ingest_events_total{source="http",outcome="accepted"})"), "0");
  EXPECT_EQ(s.at(R"(tierstream_ingest_rejections_total{source="tcp",reason="invalid_json"})"), "2");
  EXPECT_EQ(s.at(R"(tierstream_ingest_rejections_total{source="tcp",reason="future_ts"})"), "1");
  EXPECT_EQ(s.at(R"(tierstream_ingest_rejections_total{source="tcp",reason="too_long"})"), "0");
  EXPECT_EQ(s.at(R"(tierstream_ingest_ack_latency_seconds_bucket{source="tcp",le="0.0025"})"), "0");
  EXPECT_EQ(s.at(R"(tierstream_ingest_ack_latency_seconds_bucket{source="tcp",le="0.005"})"), "1");
  EXPECT_EQ(s.at(R"(tierstream_ingest_ack_latency_seconds_bucket{source="tcp",le="+Inf"})"), "1");
  EXPECT_EQ(s.at(R"(tierstream_ingest_ack_latency_seconds_count{source="tcp"})"), "1");
  EXPECT_EQ(s.at(R"(tierstream_ingest_ack_latency_seconds_sum{source="tcp"})"), "0.003");
  EXPECT_EQ(s.at("tierstream_ready"), "1");
  EXPECT_EQ(s.at("tierstream_events_in_flight"), "12");
  EXPECT_EQ(s.at("tierstream_watermark_timestamp_seconds"), "1763971200.5");
  EXPECT_EQ(s.at(R"(tierstream_user_reloads_total{from="warm"})"), "3");
  EXPECT_EQ(s.at(R"(tierstream_user_reloads_total{from="store"})"), "2");
  EXPECT_EQ(s.at(R"(tierstream_rocksdb_live_sst_bytes{db="state"})"), "4096");
  EXPECT_EQ(s.at(R"(tierstream_rocksdb_live_sst_bytes{db="journal"})"), "0");
  EXPECT_EQ(s.at(R"(tierstream_rocksdb_write_stall_seconds_total{db="journal"})"), "1.5");
  EXPECT_EQ(s.at("tierstream_disk_free_bytes"), "1099511627776");
  EXPECT_EQ(s.at("tierstream_members"), "3");
  EXPECT_EQ(s.at(R"(tierstream_tier_users{tier="new"})"), "2");
  EXPECT_EQ(s.at(R"(tierstream_tier_users{tier="high_value"})"), "0");
  EXPECT_EQ(s.at("tierstream_gmv_30d_fen"), "123456789012");
  EXPECT_EQ(s.at("tierstream_recovery_duration_seconds"), "0.25");
  EXPECT_EQ(s.at("tierstream_checkpoint_duration_seconds_count"), "0");
  EXPECT_EQ(s.at(R"(tierstream_checkpoint_duration_seconds_bucket{le="+Inf"})"), "0");
  // Off or absent: not exposed at all rather than as zeros.
  EXPECT_EQ(text.find("tierstream_changes_"), std::string::npos);
  EXPECT_EQ(text.find("tierstream_webhook_"), std::string::npos);
}

TEST(Metrics, EveryFamilyFollowsTheNamingRules) {
  IngestMetrics ingest;
  MetricsInput in = SomeInput(&ingest);
  in.change_log = true;
  in.webhooks.push_back({"crm", 4, 2.5, 10, 1});
  const std::string text = RenderMetrics(in);
  const auto types = Types(text);
  ASSERT_GT(types.size(), 30u);
  for (const auto& [name, type] : types) {
    EXPECT_EQ(name.rfind("tierstream_", 0), 0u) << name;
    const bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(total, type == "counter") << name << " " << type;
    const size_t help = text.find("# HELP " + name + " ");
    ASSERT_NE(help, std::string::npos) << name << ": no help";
    EXPECT_LT(help, text.find("# TYPE " + name + " ")) << name;
  }
  // Every sample belongs to a declared family (a histogram's by its suffixes).
  for (const auto& [series, value] : Samples(text)) {
    std::string name = series.substr(0, series.find('{'));
    if (!types.count(name)) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string sfx(suffix);
        if (name.size() > sfx.size() && name.substr(name.size() - sfx.size()) == sfx) {
          name.resize(name.size() - sfx.size());
          break;
        }
      }
    }
    ASSERT_TRUE(types.count(name)) << series;
    EXPECT_NO_THROW((void)std::stod(value)) << series << " " << value;
  }
  const auto s = Samples(text);
  EXPECT_EQ(s.at(R"(tierstream_webhook_lag_changes{webhook="crm"})"), "4");
  EXPECT_EQ(s.at(R"(tierstream_webhook_failures_total{webhook="crm"})"), "1");
  EXPECT_EQ(s.at("tierstream_changes_end_cursor"), "0");
}

TEST(Metrics, WithoutAnEventThereIsNoWatermark) {
  MetricsInput in = SomeInput(nullptr);
  in.kpis.as_of = kNoTs;
  const std::string text = RenderMetrics(in);
  EXPECT_EQ(text.find("tierstream_watermark_timestamp_seconds"), std::string::npos);
  EXPECT_EQ(text.find("tierstream_ingest_"), std::string::npos);  // no ingest figures given
  EXPECT_NE(text.find("tierstream_members 3\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace tierstream::server
