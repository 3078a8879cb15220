// The Kafka mode's tests, against librdkafka's mock cluster (`tierstream
// kafka-mock`) with kcat (Debian's kcat package) as an external client.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "common/hash.h"
#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tools/client.h"
#include "tools/gen.h"
#include "verify/diff.h"

namespace tierstream {
namespace {

using testing::Field;
using testing::FindProgram;
using testing::KafkaMockProcess;
using testing::ServerProcess;
using testing::Shell;
using testing::TempDir;

std::string FixturePath(const std::string& name) {
  const char* dir = std::getenv("TIERSTREAM_FIXTURES");
  return std::string(dir ? dir : TIERSTREAM_FIXTURES_DEFAULT) + "/" + name;
}

// The fixture's lines, and what they count.
constexpr uint64_t kFixtureLines = 12667;
constexpr uint64_t kFixtureAccepted = 12497, kFixtureDuplicates = 124, kFixtureRejected = 46;

std::string Get(const std::string& http, const std::string& target) {
  auto r = tools::HttpRequest(http, "GET", target, {}, 5);
  return r.ok() && r->status == 200 ? r->body : std::string();
}

// The KPIs once the server has counted `lines` lines (accepted, duplicate
// or rejected), or the last ones seen after 90 s.
std::string KpisAfter(const std::string& http, uint64_t lines) {
  std::string kpis;
  for (int i = 0; i < 900; ++i) {
    kpis = Get(http, "/v1/kpis");
    const uint64_t counted = Field(kpis, "events_accepted") + Field(kpis, "events_duplicate") +
                             Field(kpis, "events_rejected");
    if (!kpis.empty() && counted >= lines) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return kpis;
}

// Every profile of the fixture's expected answers, as the server gives it:
// the number that differ (the first few reported).
size_t FixtureProfileDifferences(const std::string& http, bool quiet = false) {
  size_t bad = 0;
  for (const std::string& want :
       testing::SplitLines(testing::ReadFile(FixturePath("expected_users.ndjson")))) {
    simdjson::dom::parser parser;
    std::string_view id;
    if (parser.parse(want).get_object()["user_id"].get(id)) {
      ADD_FAILURE() << "bad expected line " << want;
      return 1;
    }
    auto diffs =
        testing::DiffJson(Get(http, "/v1/users/" + tools::UrlEncode(std::string(id))), want, false);
    if (!diffs.empty() && ++bad <= 3 && !quiet) ADD_FAILURE() << id << ": " << diffs[0];
  }
  return bad;
}

// Referral credits travel through the repartition topic, so they may still
// be on their way when every line is counted: it waits (up to 20 s) for the
// answers to settle before it compares them for the record.
size_t SettledFixtureProfileDifferences(const std::string& http) {
  for (int i = 0; i < 100 && FixtureProfileDifferences(http, true) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return FixtureProfileDifferences(http);
}

// What PREFIX-changes holds, read with kcat and deduplicated by (user_id,
// seq) as a consumer would: the errors found (one (user_id, seq) carrying
// two different changes; a chain not 1, 2, 3, ... with each `from` the
// previous `to`), each user's last tier, and the records read.
struct ChangeTopicReport {
  std::vector<std::string> errors;
  std::map<std::string, std::string> last_to;
  size_t records = 0;
  size_t repeats = 0;  // records whose (user_id, seq) came before, identical
};

ChangeTopicReport ReadChangeTopic(const std::string& bootstraps,
                                  const std::string& topic = "tierstream-changes") {
  ChangeTopicReport report;
  auto read =
      Shell("kcat -C -b " + bootstraps + " -t " + topic + " -o beginning -e -q -f \"%s\\n\"");
  if (read.exit_code != 0) {
    report.errors.push_back("kcat: " + read.output);
    return report;
  }
  struct Change {
    std::string from, to, cause;
    int64_t at = 0;
    bool operator==(const Change&) const = default;
  };
  std::map<std::string, std::map<uint64_t, Change>> users;
  simdjson::dom::parser parser;
  for (const std::string& line : testing::SplitLines(read.output)) {
    ++report.records;
    simdjson::dom::object o;
    std::string_view user, to;
    uint64_t seq = 0;
    Change c;
    if (parser.parse(line).get(o) || o["user_id"].get(user) || o["seq"].get(seq) ||
        o["to"].get(to) || o["at"].get(c.at)) {
      report.errors.push_back("not a change: " + line);
      continue;
    }
    std::string_view from;
    if (!o["from"].is_null() && o["from"].get(from)) report.errors.push_back("bad from: " + line);
    c.from = from;
    c.to = to;
    c.cause = simdjson::minify(o["cause"]);
    auto [it, fresh] = users[std::string(user)].emplace(seq, c);
    if (fresh) continue;
    ++report.repeats;
    if (!(it->second == c)) {
      report.errors.push_back(std::string(user) + " seq " + std::to_string(seq) +
                              " carries two changes: " + line);
    }
  }
  for (const auto& [user, chain] : users) {
    std::string previous;
    uint64_t expect = 1;
    for (const auto& [seq, c] : chain) {
      if (seq != expect || c.from != previous) {
        report.errors.push_back(user + ": seq " + std::to_string(seq) + " from '" + c.from +
                                "' follows seq " + std::to_string(expect - 1) + " to '" + previous +
                                "'");
        break;
      }
      previous = c.to;
      ++expect;
    }
    report.last_to[user] = previous;
  }
  return report;
}

// The users of the fixture's expected answers whose tier differs from
// their last change in `report` (the first few reported unless `quiet`).
size_t TierDifferences(const ChangeTopicReport& report,
                       const std::map<std::string, std::string>& tiers, bool quiet) {
  size_t bad = 0;
  for (const auto& [id, tier] : tiers) {
    auto it = report.last_to.find(id);
    const std::string got = it == report.last_to.end() ? "(no change)" : it->second;
    if (got != tier && ++bad <= 3 && !quiet)
      ADD_FAILURE() << id << ": tier " << tier << ", changes end at " << got;
  }
  return bad;
}

size_t FixtureTierDifferences(const ChangeTopicReport& report, bool quiet = false) {
  std::map<std::string, std::string> tiers;
  for (const std::string& want :
       testing::SplitLines(testing::ReadFile(FixturePath("expected_users.ndjson")))) {
    simdjson::dom::parser parser;
    std::string_view id, tier;
    auto o = parser.parse(want).get_object();
    if (o["user_id"].get(id) || o["tier"].get(tier)) {
      ADD_FAILURE() << "bad expected line " << want;
      return 1;
    }
    tiers.emplace(id, tier);
  }
  return TierDifferences(report, tiers, quiet);
}

// session.timeout.ms=6000: the mock holds a join for about the session
// timeout, and a killed member's partitions until it expires.
std::vector<std::string> KafkaServeArgs(const std::string& bootstraps) {
  return {"--kafka",        bootstraps,
          "--kafka-config", "session.timeout.ms=6000",
          "--kafka-config", "heartbeat.interval.ms=500"};
}

#define REQUIRE_KCAT()                                                                   \
  if (FindProgram("kcat").empty()) {                                                     \
    GTEST_SKIP() << "kcat is not installed (Debian package kcat; scripts/test installs " \
                    "it)";                                                               \
  }

// The cluster a real client sees: its topics with their partition counts,
// and a record keyed by a user lands where KafkaPartitionOf puts her when
// the producer uses Kafka's partitioner (librdkafka: murmur2_random).
TEST(KafkaMock, KcatSeesItsTopicsAndItsPartitionsAgreeWithPartitionOf) {
  REQUIRE_KCAT();
  KafkaMockProcess mock(3, {"events:12", "other:3"});
  ASSERT_FALSE(mock.bootstraps().empty()) << "kafka-mock printed no bootstrap address";
  const std::string b = mock.bootstraps();
  auto meta = Shell("kcat -L -b " + b);
  ASSERT_EQ(meta.exit_code, 0) << meta.output;
  EXPECT_NE(meta.output.find("3 brokers:"), std::string::npos) << meta.output;
  EXPECT_NE(meta.output.find("topic \"events\" with 12 partitions:"), std::string::npos)
      << meta.output;
  EXPECT_NE(meta.output.find("topic \"other\" with 3 partitions:"), std::string::npos)
      << meta.output;

  TempDir dir;
  const std::string input = dir.path() + "/keyed.txt";
  {
    std::ofstream f(input);
    for (int i = 0; i < 300; ++i) {
      f << "member-" << i * 7919 << "\t{\"event_id\":\"e" << i << "\"}\n";
    }
  }
  auto produce =
      Shell("kcat -P -b " + b + " -t events -K \"\\t\" -X partitioner=murmur2_random -l " + input);
  ASSERT_EQ(produce.exit_code, 0) << produce.output;
  auto consume = Shell("kcat -C -b " + b + " -t events -o beginning -e -q -f \"%p\\t%k\\n\"");
  ASSERT_EQ(consume.exit_code, 0) << consume.output;
  size_t records = 0;
  std::map<uint32_t, int> per_partition;
  for (const std::string& line : testing::SplitLines(consume.output)) {
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const uint32_t partition = static_cast<uint32_t>(std::stoul(line.substr(0, tab)));
    const std::string key = line.substr(tab + 1);
    EXPECT_EQ(partition, KafkaPartitionOf(key, 12)) << key;
    ++per_partition[partition];
    ++records;
  }
  EXPECT_EQ(records, 300u);
  EXPECT_EQ(per_partition.size(), 12u);  // 300 keys reach every partition
  const int status = mock.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(KafkaMock, ABadTopicIsRefusedByName) {
  auto run = testing::RunToolCaptured({"kafka-mock", "--topic", "events:0"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("events:0"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("partition count"), std::string::npos) << run.err;
  run = testing::RunToolCaptured({"kafka-mock", "--topic", "bad/name:3"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("[a-zA-Z0-9._-]"), std::string::npos) << run.err;
}

// One instance consuming the reference stream, produced by kcat with its
// default partitioner (not Kafka's: most events are forwarded to their
// users' partitions): every profile and KPI exact. Then kill -9, the whole
// stream produced again, a restart: it resumes from its shards' positions,
// and the second copy counts only as duplicates (and its rejected lines).
TEST(KafkaMode, ConsumesTheReferenceStreamExactlyAndResumesAfterKill9) {
  REQUIRE_KCAT();
  KafkaMockProcess mock(3, {"events:4"});
  ASSERT_FALSE(mock.bootstraps().empty());
  const std::string b = mock.bootstraps();
  const std::string produce = "kcat -P -b " + b + " -t events -l " + FixturePath("events.ndjson");
  auto produced = Shell(produce);
  ASSERT_EQ(produced.exit_code, 0) << produced.output;

  TempDir dir;
  const std::string log = dir.path() + "/serve.log";
  ServerProcess server(dir.path() + "/data", KafkaServeArgs(b), log);
  ASSERT_TRUE(server.ready()) << testing::ReadFile(log);
  std::string kpis = KpisAfter(server.http(), kFixtureLines);
  EXPECT_EQ(Field(kpis, "events_accepted"), kFixtureAccepted) << kpis;
  EXPECT_EQ(Field(kpis, "events_duplicate"), kFixtureDuplicates) << kpis;
  EXPECT_EQ(Field(kpis, "events_rejected"), kFixtureRejected) << kpis;
  auto diffs = testing::DiffJson(kpis, testing::ReadFile(FixturePath("expected_kpis.json")), false);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " KPI differences, first: " << diffs[0];
  EXPECT_EQ(SettledFixtureProfileDifferences(server.http()), 0u);
  // The change topic: once the checkpoints covering every change are
  // published, each user's chain ends at her tier.
  ChangeTopicReport changes;
  for (int i = 0; i < 100; ++i) {
    changes = ReadChangeTopic(b);
    if (FixtureTierDifferences(changes, true) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(changes.errors.empty())
      << changes.errors.size() << " errors, first: " << changes.errors[0];
  EXPECT_EQ(FixtureTierDifferences(changes), 0u);
  // One instance owns every partition: its KPIs are the whole.
  EXPECT_NE(kpis.find("\"partitions\":{\"reporting\":4,\"total\":4}"), std::string::npos) << kpis;
  // kcat spread the lines at random: forwards went through the repartition topic.
  auto forwarded = Shell("kcat -C -b " + b +
                         " -t tierstream-repartition -o beginning -e -q -f \"%o\\n\" | wc -l");
  ASSERT_EQ(forwarded.exit_code, 0) << forwarded.output;
  EXPECT_GT(std::stoul(forwarded.output), 0u);
  const std::string health = Get(server.http(), "/healthz");
  EXPECT_EQ(Field(health, "records"), kFixtureLines) << health;
  EXPECT_GT(Field(health, "forwarded_events"), 0u) << health;
  EXPECT_NE(health.find("\"lag\":0"), std::string::npos) << health;

  server.Kill();
  produced = Shell(produce);
  ASSERT_EQ(produced.exit_code, 0) << produced.output;
  ASSERT_TRUE(server.Start()) << testing::ReadFile(log);
  kpis = KpisAfter(server.http(), 2 * kFixtureLines);
  EXPECT_EQ(Field(kpis, "events_accepted"), kFixtureAccepted) << kpis;
  EXPECT_EQ(Field(kpis, "events_duplicate"), kFixtureDuplicates + kFixtureLines - kFixtureRejected)
      << kpis;
  EXPECT_EQ(Field(kpis, "events_rejected"), 2 * kFixtureRejected) << kpis;
  // The counters were checked above (the re-sent copy counts in them).
  diffs = testing::DiffJson(kpis, testing::ReadFile(FixturePath("expected_kpis.json")), true);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " KPI differences, first: " << diffs[0];
  EXPECT_EQ(SettledFixtureProfileDifferences(server.http()), 0u);
  // The restart re-published nothing that disagrees.
  changes = ReadChangeTopic(b);
  EXPECT_TRUE(changes.errors.empty())
      << changes.errors.size() << " errors, first: " << changes.errors[0];
  EXPECT_EQ(FixtureTierDifferences(changes), 0u);
  const int status = server.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << testing::ReadFile(log);
}

// State that can move: an instance killed, another on a fresh disk takes
// its partitions over and restores them from the changelog, not from the
// input (it resumes where the restored checkpoints stand): every profile
// and KPI as the first one had them.
TEST(KafkaMode, AFreshDiskRestoresEveryPartitionFromTheChangelog) {
  REQUIRE_KCAT();
  KafkaMockProcess mock(3, {"events:4"});
  ASSERT_FALSE(mock.bootstraps().empty());
  const std::string b = mock.bootstraps();
  auto produced = Shell("kcat -P -b " + b + " -t events -l " + FixturePath("events.ndjson"));
  ASSERT_EQ(produced.exit_code, 0) << produced.output;
  TempDir dir;
  const std::string log_a = dir.path() + "/a.log", log_b = dir.path() + "/b.log";
  {
    ServerProcess a(dir.path() + "/a", KafkaServeArgs(b), log_a);
    ASSERT_TRUE(a.ready()) << testing::ReadFile(log_a);
    const std::string kpis = KpisAfter(a.http(), kFixtureLines);
    ASSERT_EQ(Field(kpis, "events_accepted"), kFixtureAccepted) << kpis;
    // Its checkpoints (every 2 s) reach the changelog.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    a.Kill();
  }
  ServerProcess b_server(dir.path() + "/b", KafkaServeArgs(b), log_b);
  ASSERT_TRUE(b_server.ready()) << testing::ReadFile(log_b);
  const std::string kpis = KpisAfter(b_server.http(), kFixtureLines);
  auto diffs = testing::DiffJson(kpis, testing::ReadFile(FixturePath("expected_kpis.json")), false);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " KPI differences, first: " << diffs[0];
  EXPECT_EQ(SettledFixtureProfileDifferences(b_server.http()), 0u);
  const std::string log = testing::ReadFile(log_b);
  size_t restored = 0;
  for (size_t at = log.find("restored from tierstream-changelog"); at != std::string::npos;
       at = log.find("restored from tierstream-changelog", at + 1)) {
    ++restored;
  }
  EXPECT_EQ(restored, 4u) << log;
  // As /healthz and /metrics count them.
  const std::string health = Get(b_server.http(), "/healthz");
  EXPECT_EQ(Field(health, "restores"), 4u) << health;
  EXPECT_GT(Field(health, "restored_bytes"), 0u) << health;
  EXPECT_NE(Get(b_server.http(), "/metrics").find("tierstream_kafka_restores_total 4"),
            std::string::npos);
  // A killed owner's changes, published by it or by its successor, form
  // one chain per user ending at her tier.
  ChangeTopicReport changes;
  for (int i = 0; i < 100; ++i) {
    changes = ReadChangeTopic(b);
    if (FixtureTierDifferences(changes, true) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(changes.errors.empty())
      << changes.errors.size() << " errors, first: " << changes.errors[0];
  EXPECT_EQ(FixtureTierDifferences(changes), 0u);
}

TEST(KafkaMode, AMissingTopicIsNamed) {
  REQUIRE_KCAT();
  KafkaMockProcess mock(1, {"other:2"});
  ASSERT_FALSE(mock.bootstraps().empty());
  TempDir dir;
  auto run = testing::RunToolCaptured(
      {"serve", "--data", dir.path(), "--http", "127.0.0.1:0", "--kafka", mock.bootstraps()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("the input topic events does not exist"), std::string::npos) << run.err;
}

// The KPIs an instance gives once the cluster has counted `lines` lines
// with every partition reporting, or the last ones seen after `seconds`.
std::string ClusterKpisAfter(const std::string& http, uint64_t lines, uint32_t partitions,
                             int seconds) {
  std::string kpis;
  const std::string reporting = "\"partitions\":{\"reporting\":" + std::to_string(partitions);
  for (int i = 0; i < seconds * 5; ++i) {
    kpis = Get(http, "/v1/kpis");
    const uint64_t counted = Field(kpis, "events_accepted") + Field(kpis, "events_duplicate") +
                             Field(kpis, "events_rejected");
    if (counted == lines && kpis.find(reporting) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return kpis;
}

// Three instances, twelve partitions; a generated stream produced with
// kcat's default partitioner (most events forwarded) in chunks while
// instances are killed (-9) at random and restarted on their disks, one
// instance added and one removed on the way. At the end every profile and
// KPI, asked of any instance, is the batch evaluator's over the stream, and
// the change topic holds one consistent chain per user ending at her tier.
// TIERSTREAM_KAFKA_KILLS sets the kills (default 4; the long run: 30).
TEST(KafkaCluster, InstancesKilledAddedAndRemovedStayExact) {
  REQUIRE_KCAT();
  const char* kills_env = std::getenv("TIERSTREAM_KAFKA_KILLS");
  const int kills = kills_env != nullptr ? std::atoi(kills_env) : 4;
  KafkaMockProcess mock(3, {"events:12"});
  ASSERT_FALSE(mock.bootstraps().empty());
  const std::string b = mock.bootstraps();
  tools::GenOptions gen;
  gen.users = 400;
  gen.days = 40;
  gen.seed = 11;
  gen.invalid_rate = 0.002;
  const std::vector<std::string> lines = testing::GenerateLines(gen);
  const testing::Reference ref = testing::Evaluate(lines);
  TempDir dir;
  // The stream in kills + 2 chunks, one file each.
  const size_t chunks = static_cast<size_t>(kills) + 2;
  std::vector<std::string> files;
  for (size_t c = 0; c < chunks; ++c) {
    files.push_back(dir.path() + "/chunk" + std::to_string(c) + ".ndjson");
    std::ofstream(files.back()) << testing::Join(lines, lines.size() * c / chunks,
                                                 lines.size() * (c + 1) / chunks);
  }
  auto produce = [&](size_t c) {
    auto produced = Shell("kcat -P -b " + b + " -t events -l " + files[c]);
    ASSERT_EQ(produced.exit_code, 0) << produced.output;
  };
  std::map<std::string, std::unique_ptr<ServerProcess>> instances;
  auto start = [&](const std::string& id) {
    std::vector<std::string> args = KafkaServeArgs(b);
    args.insert(args.end(), {"--instance-id", id});
    auto& server = instances[id];
    server = std::make_unique<ServerProcess>(dir.path() + "/" + id, args,
                                             dir.path() + "/" + id + ".log");
    ASSERT_TRUE(server->ready()) << testing::ReadFile(dir.path() + "/" + id + ".log");
  };
  for (const char* id : {"i1", "i2", "i3"}) start(id);
  produce(0);
  std::mt19937 rng(static_cast<uint32_t>(kills));
  for (int k = 0; k < kills; ++k) {
    produce(static_cast<size_t>(k) + 1);
    auto victim = instances.begin();
    std::advance(victim, static_cast<long>(rng() % instances.size()));
    victim->second->Kill();
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 3000));
    ASSERT_TRUE(victim->second->Start()) << victim->first;
    if (k == kills / 2) start("i4");                         // added, on a fresh disk
    if (k == kills / 2 + 1 && instances.count("i1") == 1) {  // removed for good
      const int status = instances["i1"]->Terminate();
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << status << "\n"
          << testing::ReadFile(dir.path() + "/i1.log");
      instances.erase("i1");
    }
  }
  produce(chunks - 1);
  const std::string http = instances.begin()->second->http();
  const std::string kpis = ClusterKpisAfter(http, lines.size(), 12, 240);
  EXPECT_NE(kpis.find("\"partitions\":{\"reporting\":12,\"total\":12}"), std::string::npos) << kpis;
  // The last rebalance may still be settling (a query for a partition on
  // the move answers 503; the instances learn each other's T within a
  // second): settled, every instance answers every query exactly.
  auto settled = [&] {
    for (const auto& [id, server] : instances) {
      if (!verify::DiffKpis(Get(server->http(), "/v1/kpis"), ref.kpis, true).empty() ||
          testing::ProfileDifferences(server->http(), ref, 0) != 0) {
        return false;
      }
    }
    return true;
  };
  for (int i = 0; i < 60 && !settled(); ++i) std::this_thread::sleep_for(std::chrono::seconds(1));
  for (const auto& [id, server] : instances) {
    SCOPED_TRACE(id);
    auto diffs = verify::DiffKpis(Get(server->http(), "/v1/kpis"), ref.kpis, true);
    EXPECT_TRUE(diffs.empty()) << diffs.size() << " KPI differences, first: " << diffs[0];
    EXPECT_EQ(testing::ProfileDifferences(server->http(), ref), 0u);
  }
  std::map<std::string, std::string> tiers;
  for (const auto& [id, profile] : ref.profiles) tiers.emplace(id, profile.tier);
  ChangeTopicReport changes;
  for (int i = 0; i < 100; ++i) {
    changes = ReadChangeTopic(b);
    if (TierDifferences(changes, tiers, true) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  EXPECT_TRUE(changes.errors.empty())
      << changes.errors.size() << " errors, first: " << changes.errors[0];
  EXPECT_EQ(TierDifferences(changes, tiers, false), 0u);
}

// A zombie: an instance stopped (SIGSTOP) mid-stream past its session
// timeout while the other takes its partitions over, then woken (SIGCONT):
// whatever it writes afterwards changes nothing — the results stay exact,
// the change topic consistent — and a later restore of every partition from
// the changelog on a fresh disk is exact too.
TEST(KafkaCluster, AZombieWakingUpChangesNothing) {
  REQUIRE_KCAT();
  KafkaMockProcess mock(3, {"events:6"});
  ASSERT_FALSE(mock.bootstraps().empty());
  const std::string b = mock.bootstraps();
  tools::GenOptions gen;
  gen.users = 300;
  gen.days = 40;
  gen.seed = 5;
  const std::vector<std::string> lines = testing::GenerateLines(gen);
  const testing::Reference ref = testing::Evaluate(lines);
  TempDir dir;
  std::vector<std::string> files;
  for (size_t c = 0; c < 3; ++c) {
    files.push_back(dir.path() + "/chunk" + std::to_string(c) + ".ndjson");
    std::ofstream(files.back()) << testing::Join(lines, lines.size() * c / 3,
                                                 lines.size() * (c + 1) / 3);
  }
  auto produce = [&](size_t c) {
    auto produced = Shell("kcat -P -b " + b + " -t events -l " + files[c]);
    ASSERT_EQ(produced.exit_code, 0) << produced.output;
  };
  auto serve = [&](const std::string& id) {
    std::vector<std::string> args = KafkaServeArgs(b);
    args.insert(args.end(), {"--instance-id", id});
    return std::make_unique<ServerProcess>(dir.path() + "/" + id, args,
                                           dir.path() + "/" + id + ".log");
  };
  auto zombie = serve("z1");
  auto other = serve("z2");
  ASSERT_TRUE(zombie->ready() && other->ready());
  produce(0);
  ClusterKpisAfter(other->http(), lines.size() / 3, 6, 60);
  // Stopped with records to take: it wakes up in the middle of them.
  produce(1);
  ASSERT_EQ(::kill(zombie->pid(), SIGSTOP), 0);
  produce(2);
  // The other takes every partition over (the session timeout is 6 s) and
  // counts everything.
  const std::string kpis = ClusterKpisAfter(other->http(), lines.size(), 6, 120);
  const std::string health = Get(other->http(), "/healthz");
  ASSERT_EQ(::kill(zombie->pid(), SIGCONT), 0);
  // What it does when it wakes (batches, checkpoints, changelog records)
  // before it learns it lost its partitions.
  std::this_thread::sleep_for(std::chrono::seconds(10));
  {
    // What it did, for the record (how far it got before it learned is
    // timing).
    size_t fenced = 0, lost = 0;
    for (const std::string& line : testing::SplitLines(testing::ReadFile(dir.path() + "/z1.log"))) {
      fenced += line.find("another member claimed") != std::string::npos;
      lost += line.find("lost events partitions") != std::string::npos;
    }
    std::printf("the zombie: %zu checkpoints' changes fenced, %zu assignments lost\n", fenced,
                lost);
  }
  auto exact = [&](const std::string& http) {
    auto diffs = verify::DiffKpis(Get(http, "/v1/kpis"), ref.kpis, true);
    EXPECT_TRUE(diffs.empty()) << diffs.size() << " KPI differences, first: " << diffs[0];
    EXPECT_EQ(testing::ProfileDifferences(http, ref), 0u);
  };
  for (int i = 0; i < 30; ++i) {
    if (verify::DiffKpis(Get(other->http(), "/v1/kpis"), ref.kpis, true).empty() &&
        testing::ProfileDifferences(other->http(), ref, 0) == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  {
    SCOPED_TRACE("after the zombie woke: " + kpis + health);
    exact(other->http());
  }
  std::map<std::string, std::string> tiers;
  for (const auto& [id, profile] : ref.profiles) tiers.emplace(id, profile.tier);
  ChangeTopicReport changes;
  for (int i = 0; i < 100; ++i) {
    changes = ReadChangeTopic(b);
    if (changes.errors.empty() && TierDifferences(changes, tiers, true) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  EXPECT_TRUE(changes.errors.empty())
      << changes.errors.size() << " errors, first: " << changes.errors[0];
  EXPECT_EQ(TierDifferences(changes, tiers, false), 0u);
  // Both leave; a third instance on a fresh disk restores every partition
  // from the changelog (the zombie's records in it count for nothing).
  zombie->Terminate();
  other->Terminate();
  auto fresh = serve("z3");
  ASSERT_TRUE(fresh->ready());
  ClusterKpisAfter(fresh->http(), lines.size(), 6, 60);
  SCOPED_TRACE("restored on a fresh disk");
  exact(fresh->http());
  EXPECT_EQ(Field(Get(fresh->http(), "/healthz"), "restores"), 6u);
}

// SIGTERM while the cluster cannot be reached: serve stops after at most
// its shared shutdown budget (10 s, and a 2 s probe before the offsets it
// does not commit) — before, each client's flush and a synchronous commit
// waited for their own timeouts in turn (50 s) — and exits 0.
TEST(KafkaMode, StopsWithinItsBudgetWhenTheClusterIsGone) {
  REQUIRE_KCAT();
  auto mock = std::make_unique<KafkaMockProcess>(1, std::vector<std::string>{"events:2"});
  ASSERT_FALSE(mock->bootstraps().empty());
  TempDir dir;
  const std::string log = dir.path() + "/serve.log";
  ServerProcess server(dir.path() + "/data", KafkaServeArgs(mock->bootstraps()), log);
  ASSERT_TRUE(server.ready()) << testing::ReadFile(log);
  const std::string body = testing::ReadFile(FixturePath("events.ndjson"));
  auto post = tools::HttpRequest(server.http(), "POST", "/v1/events", body, 60);
  ASSERT_TRUE(post.ok()) << post.status().ToString();
  ASSERT_EQ(post->status, 200) << post->body;
  const std::string kpis = ClusterKpisAfter(server.http(), kFixtureLines, 2, 60);
  ASSERT_EQ(Field(kpis, "events_accepted") + Field(kpis, "events_duplicate") +
                Field(kpis, "events_rejected"),
            kFixtureLines)
      << kpis;
  mock.reset();  // the whole cluster is gone
  const auto start = std::chrono::steady_clock::now();
  const int status = server.Terminate();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << testing::ReadFile(log);
  EXPECT_LT(took, std::chrono::seconds(30)) << testing::ReadFile(log);
  EXPECT_NE(testing::ReadFile(log).find("offsets not committed on leaving the group"),
            std::string::npos);
}

// POST /v1/events and TCP ingest in the Kafka mode: the lines go into the
// input topic, each valid one keyed by its user (so it lands on her
// partition: nothing is forwarded but referral credits), each rejected one
// answered; the answer comes once Kafka has them. Sent twice, once each
// way, as a user retrying would: the second copy counts only as duplicates
// (and its rejected lines).
TEST(KafkaMode, PostedAndTcpEventsGoThroughTheTopicExactly) {
  REQUIRE_KCAT();
  KafkaMockProcess mock(1, {"events:4"});
  ASSERT_FALSE(mock.bootstraps().empty());
  const std::string b = mock.bootstraps();
  TempDir dir;
  const std::string log = dir.path() + "/serve.log";
  ServerProcess server(dir.path() + "/data", KafkaServeArgs(b), log);  // --tcp given
  ASSERT_TRUE(server.ready()) << testing::ReadFile(log);
  const std::string body = testing::ReadFile(FixturePath("events.ndjson"));
  auto post = tools::HttpRequest(server.http(), "POST", "/v1/events", body, 60);
  ASSERT_TRUE(post.ok()) << post.status().ToString();
  ASSERT_EQ(post->status, 200) << post->body;
  EXPECT_EQ(Field(post->body, "produced"), kFixtureLines) << post->body;
  EXPECT_EQ(Field(post->body, "rejected"), kFixtureRejected) << post->body;
  EXPECT_NE(post->body.find("\"line\":588,\"error\":\"not a JSON object\""), std::string::npos)
      << post->body.substr(0, 300);
  // The second copy over TCP (--tcp given): acked as Kafka acknowledges,
  // "accepted" counting the lines produced.
  uint64_t acked = 0;
  auto summary = tools::TcpSend(server.tcp(), body, 60, {},
                                [&](const tools::TcpAck& ack) { acked = ack.durable_lines; });
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(Field(*summary, "durable_lines"), kFixtureLines) << *summary;
  EXPECT_EQ(Field(*summary, "accepted"), kFixtureLines - kFixtureRejected) << *summary;
  EXPECT_EQ(Field(*summary, "rejected"), kFixtureRejected) << *summary;
  EXPECT_LE(acked, kFixtureLines);
  std::string kpis = KpisAfter(server.http(), 2 * kFixtureLines);
  // Referral credits go through the repartition topic: they may still be
  // on their way when every line is counted.
  const std::string want_kpis = testing::ReadFile(FixturePath("expected_kpis.json"));
  for (int i = 0; i < 100 && !testing::DiffJson(kpis, want_kpis, true).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    kpis = Get(server.http(), "/v1/kpis");
  }
  EXPECT_EQ(Field(kpis, "events_accepted"), kFixtureAccepted) << kpis;
  EXPECT_EQ(Field(kpis, "events_duplicate"), kFixtureDuplicates + kFixtureLines - kFixtureRejected)
      << kpis;
  EXPECT_EQ(Field(kpis, "events_rejected"), 2 * kFixtureRejected) << kpis;
  auto diffs = testing::DiffJson(kpis, want_kpis, true);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " KPI differences, first: " << diffs[0];
  EXPECT_EQ(SettledFixtureProfileDifferences(server.http()), 0u);
  // Keyed by user: every valid record is on its user's partition.
  auto keys = Shell("kcat -C -b " + b + " -t events -o beginning -e -q -f \"%p\\t%k\\n\"");
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  size_t keyed = 0;
  for (const std::string& line : testing::SplitLines(keys.output)) {
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string key = line.substr(tab + 1);
    if (key.empty()) continue;  // a rejected line
    ++keyed;
    EXPECT_EQ(std::stoul(line.substr(0, tab)), KafkaPartitionOf(key, 4)) << key;
  }
  EXPECT_EQ(keyed, 2 * (kFixtureLines - kFixtureRejected));
}

}  // namespace
}  // namespace tierstream
