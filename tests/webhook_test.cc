// Webhooks end to end: `tierstream serve` with a webhook configured
// delivers to a receiver written here (tests/webhook_receiver.h) that fails
// about a third of its requests with 500 and sometimes hangs past the
// webhook's timeout, while a generated event set streams in and the server
// is killed with SIGKILL and restarted. In the end every change the feed
// holds after the webhook's start was answered 200 at least once, exactly
// as GET /v1/changes renders it; every body's signature is valid; and a
// change comes twice only as a whole batch sent again (the same
// Idempotency-Key and a byte-identical body).
//
// Also: a webhook added to a server that already has changes gets none of
// them, and a webhook taken out of the config and put back (at another
// index) resumes where it was.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "tests/process_util.h"
#include "tests/test_util.h"
#include "tests/webhook_receiver.h"
#include "tools/client.h"

namespace tierstream {
namespace {

using Clock = std::chrono::steady_clock;
using testing::WebhookReceiver;

constexpr char kSecret[] = "whsec-test-0123456789abcdef";

// HMAC-SHA256 in lowercase hex, written here against OpenSSL directly
// rather than through the server's code.
std::string Hmac(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  std::string hex;
  char two[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(two, sizeof two, "%02x", mac[i]);
    hex += two;
  }
  return hex;
}

// The README's recipe: `openssl dgst -sha256 -hmac "$SECRET"` over the body.
std::string OpensslCli(const std::string& key, const std::string& body_path) {
  const std::string cmd = "openssl dgst -sha256 -hmac '" + key + "' < '" + body_path + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {};
  char line[256] = {};
  const bool got = std::fgets(line, sizeof line, p) != nullptr;
  ::pclose(p);
  if (!got) return {};
  std::string out = line;
  out = out.substr(out.rfind(' ') + 1);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string WriteConfig(const std::string& dir, const std::string& hooks) {
  const std::string secret = dir + "/secret";
  std::ofstream(secret) << "  " << kSecret << "\n";  // trimmed when read
  const std::string path = dir + "/config.json";
  std::ofstream(path) << R"({"webhooks":[)" << hooks << "]}";
  return path;
}

std::string Hook(const std::string& dir, uint16_t port, int max_batch, const std::string& extra,
                 int timeout_ms = 1000) {
  return R"({"url":"http://127.0.0.1:)" + std::to_string(port) +
         R"(/hooks/tiers","secret_file":")" + dir + R"(/secret","max_batch":)" +
         std::to_string(max_batch) + R"(,"max_delay_ms":100,"timeout_ms":)" +
         std::to_string(timeout_ms) + extra + "}";
}

// A webhook's figures in /healthz (the `index`th of its "webhooks" array).
struct HookHealth {
  bool ok = false;
  uint64_t position = 0;
  uint64_t lag = 0;
  std::string id;
};
HookHealth Health(const std::string& http, size_t index) {
  HookHealth h;
  auto r = tools::HttpRequest(http, "GET", "/healthz", {}, 5);
  if (!r.ok() || r->status != 200) return h;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r->body).get(doc)) return h;
  simdjson::dom::array hooks;
  if (doc["webhooks"].get(hooks) || index >= hooks.size()) return h;
  simdjson::dom::element w = hooks.at(index);
  std::string_view position, id;
  if (w["position"].get(position) || w["lag_changes"].get(h.lag) || w["id"].get(id)) return h;
  h.position = std::stoull(std::string(position));
  h.id = std::string(id);
  h.ok = true;
  return h;
}

// The feed's end cursor (GET /v1/changes?after=end).
uint64_t FeedEnd(const std::string& http) {
  auto r = tools::HttpRequest(http, "GET", "/v1/changes?after=end");
  if (!r.ok()) return UINT64_MAX;
  const size_t at = r->body.find("\"next\":\"");
  return at == std::string::npos ? UINT64_MAX : std::stoull(r->body.substr(at + 8));
}

// The feed's end once it stops moving: a change is written just after the
// ack of its event, and the sweep's between groups.
uint64_t SettledFeedEnd(const std::string& http) {
  uint64_t end = FeedEnd(http);
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t again = FeedEnd(http);
    if (again == end) break;
    end = again;
  }
  return end;
}

// Every change after `after`, each as GET /v1/changes renders it.
std::map<uint64_t, std::string> ReadFeed(const std::string& http, uint64_t after) {
  std::map<uint64_t, std::string> out;
  simdjson::dom::parser parser;
  for (;;) {
    auto r =
        tools::HttpRequest(http, "GET", "/v1/changes?limit=1000&after=" + std::to_string(after));
    EXPECT_TRUE(r.ok() && r->status == 200);
    if (!r.ok() || r->status != 200) return out;
    simdjson::dom::element doc;
    EXPECT_FALSE(parser.parse(r->body).get(doc));
    simdjson::dom::array changes = doc["changes"].get_array().value();
    for (simdjson::dom::element c : changes) {
      out[std::stoull(std::string(c["cursor"].get_string().value()))] = simdjson::minify(c);
    }
    const uint64_t next = std::stoull(std::string(doc["next"].get_string().value()));
    if (changes.size() == 0 || next == after) return out;
    after = next;
  }
}

// Waits until the webhook has passed the feed's end (and the feed stopped
// growing); false on timeout.
bool WaitCaughtUp(const std::string& http, size_t index, int timeout_seconds) {
  // A KPI query finishes every shard's sweep: time changes are made now.
  (void)tools::HttpRequest(http, "GET", "/v1/kpis");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  while (Clock::now() < deadline) {
    const uint64_t end = FeedEnd(http);
    const HookHealth h = Health(http, index);
    if (h.ok && end != UINT64_MAX && h.position >= end && h.lag == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// What the receiver's requests say, checked against the promises.
struct Delivered {
  std::map<uint64_t, std::string> changes;  // cursor -> its JSON, from requests answered 200
  std::set<uint64_t> seen;                  // in any request
  size_t requests = 0, answered_200 = 0, answered_500 = 0, hangs = 0;
  size_t resent_batches = 0;  // requests repeating an earlier one
  std::vector<std::string> errors;
};

Delivered Check(const std::vector<WebhookReceiver::Request>& requests, const std::string& id) {
  Delivered d;
  std::map<std::string, std::string> body_of_key;
  std::map<uint64_t, std::string> key_of_cursor;
  simdjson::dom::parser parser;
  const auto error = [&](const std::string& e) {
    if (d.errors.size() < 10) d.errors.push_back(e);
  };
  for (const WebhookReceiver::Request& r : requests) {
    ++d.requests;
    d.answered_200 += r.answer == 200;
    d.answered_500 += r.answer == 500;
    d.hangs += r.answer == 503;
    const auto header = [&](const char* name) {
      auto it = r.headers.find(name);
      return it == r.headers.end() ? std::string() : it->second;
    };
    const std::string key = header("idempotency-key");
    if (r.method != "POST" || r.target != "/hooks/tiers")
      error("request " + r.method + " " + r.target);
    if (header("content-type") != "application/json")
      error("content-type " + header("content-type"));
    if (header("x-tierstream-webhook") != id) error("webhook id " + header("x-tierstream-webhook"));
    if (header("x-tierstream-signature") != "sha256=" + Hmac(kSecret, r.body)) {
      error("bad signature on " + key);
    }
    auto [known, fresh] = body_of_key.emplace(key, r.body);
    if (!fresh) {
      ++d.resent_batches;
      if (known->second != r.body) error("key " + key + " came again with another body");
    }
    simdjson::dom::element doc;
    simdjson::dom::array changes;
    if (parser.parse(r.body).get(doc) || doc["changes"].get(changes) || changes.size() == 0) {
      error("body of " + key + " is not {\"changes\":[...]}");
      continue;
    }
    uint64_t first = 0, last = 0, prev = 0;
    for (simdjson::dom::element c : changes) {
      const uint64_t cursor = std::stoull(std::string(c["cursor"].get_string().value()));
      if (first == 0) first = cursor;
      if (cursor <= prev) error("cursors out of order in " + key);
      prev = last = cursor;
      d.seen.insert(cursor);
      // A change comes again only in the batch that first carried it.
      auto [k, fresh_cursor] = key_of_cursor.emplace(cursor, key);
      if (!fresh_cursor && k->second != key) {
        error("change " + std::to_string(cursor) + " came in " + k->second + " and again in " +
              key);
      }
      if (r.answer == 200) d.changes[cursor] = simdjson::minify(c);
    }
    if (key != std::to_string(first) + "-" + std::to_string(last)) {
      error("Idempotency-Key " + key + " for changes " + std::to_string(first) + ".." +
            std::to_string(last));
    }
  }
  return d;
}

TEST(Webhooks, EveryChangeIsDeliveredSignedAcrossKillsAndFailuresAndRepeatsOnlyAsWholeBatches) {
  constexpr int kMaxBatch = 100;
  testing::TempDir dir;
  WebhookReceiver receiver({.fail_rate = 0.33, .hang_rate = 0.06, .hang_ms = 1600, .seed = 7});
  const std::string config =
      WriteConfig(dir.path(), Hook(dir.path(), receiver.port(), kMaxBatch, ""));
  testing::ServerProcess server(dir.path() + "/data",
                                {"--config", config, "--checkpoint-interval-ms", "50"},
                                dir.path() + "/server.log");
  ASSERT_TRUE(server.ready()) << testing::ReadFile(dir.path() + "/server.log");
  const HookHealth start = Health(server.http(), 0);
  ASSERT_TRUE(start.ok);
  EXPECT_EQ(start.position, 0u);  // a new data dir: the feed's end is 0

  tools::GenOptions g;
  g.users = 1500;
  g.days = 40;  // long enough for changes by time alone
  g.events = 24000;
  g.seed = 11;
  const auto lines = testing::GenerateLines(g);
  // Small POSTs, a little apart, while the webhook delivers (and retries).
  // The last 400 lines are kept for the end.
  const size_t tail = lines.size() - 400;
  std::vector<std::pair<size_t, size_t>> batches;
  for (size_t i = 0; i < tail; i += 200) batches.emplace_back(i, std::min(tail, i + 200));
  const std::string http = server.http();
  const auto post = [&](size_t begin, size_t end) {
    const std::string body = testing::Join(lines, begin, end);
    for (int attempt = 0; attempt < 300; ++attempt) {
      auto r = tools::HttpRequest(http, "POST", "/v1/events", body, 30);
      if (r.ok() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // restarting
    }
    return false;
  };
  std::atomic<size_t> acked{0};
  std::atomic<bool> stuck{false};
  std::thread sender([&] {
    for (size_t b = 0; b < batches.size(); ++b) {
      if (!post(batches[b].first, batches[b].second)) return stuck.store(true);
      acked.store(b + 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  // Kill 1: at a random moment in the middle of the stream.
  std::mt19937_64 rng(3);
  while (acked.load() < batches.size() / 2 && !stuck.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
  server.Kill();
  ASSERT_TRUE(server.Start()) << "restart 1";
  sender.join();
  ASSERT_FALSE(stuck.load()) << "a batch of events was never acknowledged";
  // Kill 2: while the receiver holds a batch cut short by max_delay_ms
  // and more changes have come in behind it. After the restart that batch
  // must come again as it was, not as a fuller one.
  ASSERT_TRUE(WaitCaughtUp(http, 0, 180)) << "the webhook never caught up";
  receiver.Hold(true);
  const size_t held_at = receiver.requests().size();
  ASSERT_TRUE(post(tail, tail + 50));
  const auto held_deadline = Clock::now() + std::chrono::seconds(10);
  while (receiver.requests().size() == held_at && Clock::now() < held_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(receiver.requests().size(), held_at) << "no batch after 50 more lines";
  ASSERT_TRUE(post(tail + 50, lines.size()));
  server.Kill();
  receiver.Hold(false);
  ASSERT_TRUE(server.Start()) << "restart 2";
  const int kills = 2;
  ASSERT_TRUE(WaitCaughtUp(server.http(), 0, 180)) << "the webhook never caught up at the end";
  const std::map<uint64_t, std::string> feed = ReadFeed(server.http(), start.position);
  ASSERT_GT(feed.size(), 500u);
  receiver.Stop();
  const auto requests = receiver.requests();
  const Delivered d = Check(requests, start.id);
  for (const auto& e : d.errors) ADD_FAILURE() << e;
  size_t missing = 0, different = 0;
  for (const auto& [cursor, json] : feed) {
    auto it = d.changes.find(cursor);
    if (it == d.changes.end()) {
      if (++missing <= 3) ADD_FAILURE() << "change " << cursor << " never answered 200: " << json;
    } else if (it->second != json) {
      if (++different <= 3)
        ADD_FAILURE() << "change " << cursor << ": " << it->second << " vs " << json;
    }
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(different, 0u);
  // Nothing from before the start or beyond the feed.
  for (uint64_t cursor : d.seen) EXPECT_EQ(feed.count(cursor), 1u) << "cursor " << cursor;
  // The held batch was cut short (by time), so a fuller one was possible.
  {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_FALSE(parser.parse(requests[held_at].body).get(doc));
    EXPECT_LT(doc["changes"].get_array().value().size(), static_cast<size_t>(kMaxBatch));
  }
  // The faults did happen.
  EXPECT_GT(d.answered_500, 0u);
  EXPECT_GT(d.hangs, 0u);
  // The README's recipe agrees with the signature of a delivered body.
  const std::string body_path = dir.path() + "/body.json";
  std::ofstream(body_path, std::ios::binary) << requests.front().body;
  EXPECT_EQ("sha256=" + OpensslCli(kSecret, body_path),
            requests.front().headers.at("x-tierstream-signature"));
  // How many restarts found a batch sealed and not yet answered 200.
  const std::string log = testing::ReadFile(dir.path() + "/server.log");
  size_t resumed_batches = 0;
  for (size_t at = 0; (at = log.find("sends again the batch", at)) != std::string::npos; ++at) {
    ++resumed_batches;
  }
  std::printf(
      "webhook: %zu changes (cursors 1..%llu) in %zu requests: %zu answered 200, %zu 500, %zu "
      "hung past the timeout; %zu were batches sent again (same key, same body), %zu of them "
      "after one of %d kills\n",
      feed.size(), static_cast<unsigned long long>(feed.rbegin()->first), d.requests,
      d.answered_200, d.answered_500, d.hangs, d.resent_batches, resumed_batches, kills);
}

TEST(Webhooks, ANewWebhookStartsAtTheFeedsEndAndAKnownOneResumesWhereItWas) {
  testing::TempDir dir;
  WebhookReceiver a_receiver({.seed = 1});
  WebhookReceiver b_receiver({.seed = 2});
  tools::GenOptions g;
  g.users = 800;
  g.days = 40;
  g.events = 12000;
  g.seed = 5;
  const auto lines = testing::GenerateLines(g);
  const auto send = [&](testing::ServerProcess& server, size_t begin, size_t end) {
    auto r = tools::HttpRequest(server.http(), "POST", "/v1/events",
                                testing::Join(lines, begin, end), 60);
    ASSERT_TRUE(r.ok() && r->status == 200);
    (void)tools::HttpRequest(server.http(), "GET", "/v1/kpis");  // sweeps: time changes now
  };
  const std::string hook_a = Hook(dir.path(), a_receiver.port(), 50, "", 60'000);
  const std::string hook_b = Hook(dir.path(), b_receiver.port(), 50, R"(,"to":["dormant"])");
  const std::string data = dir.path() + "/data";
  const size_t third = lines.size() / 3;

  // 1. No webhook: a third of the stream makes changes.
  uint64_t end_before_a = 0;
  {
    testing::ServerProcess server(data);
    ASSERT_TRUE(server.ready());
    send(server, 0, third);
    end_before_a = SettledFeedEnd(server.http());
    EXPECT_EQ(server.Terminate(), 0);
  }
  ASSERT_GT(end_before_a, 100u);
  // 2. Webhook A is added: it starts at the end, and gets what comes next.
  const std::string config_a = WriteConfig(dir.path(), hook_a);
  std::string id_a;
  uint64_t end_with_a = 0;
  {
    testing::ServerProcess server(data, {"--config", config_a});
    ASSERT_TRUE(server.ready());
    const HookHealth h = Health(server.http(), 0);
    ASSERT_TRUE(h.ok);
    EXPECT_EQ(h.position, end_before_a);
    id_a = h.id;
    send(server, third, 2 * third);
    ASSERT_TRUE(WaitCaughtUp(server.http(), 0, 60));
    end_with_a = FeedEnd(server.http());
    EXPECT_EQ(server.Terminate(), 0);
  }
  ASSERT_GT(end_with_a, end_before_a);
  {
    const Delivered d = Check(a_receiver.requests(), id_a);
    for (const auto& e : d.errors) ADD_FAILURE() << e;
    ASSERT_FALSE(d.seen.empty());
    EXPECT_GT(*d.seen.begin(), end_before_a) << "a new webhook got changes older than itself";
    EXPECT_EQ(*d.seen.rbegin(), end_with_a);
  }
  // 3. Without webhooks, more changes; then A comes back at index 1 behind
  // a new webhook B (filtered to dormant).
  {
    testing::ServerProcess server(data);
    ASSERT_TRUE(server.ready());
    send(server, 2 * third, 2 * third + third / 2);
    EXPECT_EQ(server.Terminate(), 0);
  }
  const std::string config_ba = WriteConfig(dir.path(), hook_b + "," + hook_a);
  const size_t a_requests_before = a_receiver.requests().size();
  testing::ServerProcess server(data, {"--config", config_ba});
  ASSERT_TRUE(server.ready());
  const uint64_t end_before_b = FeedEnd(server.http());
  const HookHealth b = Health(server.http(), 0), a = Health(server.http(), 1);
  ASSERT_TRUE(a.ok && b.ok);
  EXPECT_EQ(a.id, id_a);
  EXPECT_EQ(b.position, end_before_b);
  // A may have caught up already: its first request tells where it resumed.
  ASSERT_TRUE(WaitCaughtUp(server.http(), 1, 60));
  {
    const auto a_requests = a_receiver.requests();
    ASSERT_GT(a_requests.size(), a_requests_before);
    const std::string& key = a_requests[a_requests_before].headers.at("idempotency-key");
    EXPECT_EQ(key.substr(0, key.find('-')), std::to_string(end_with_a + 1))
        << "A did not resume where it was";
  }
  send(server, 2 * third + third / 2, lines.size());
  ASSERT_TRUE(WaitCaughtUp(server.http(), 0, 60));
  ASSERT_TRUE(WaitCaughtUp(server.http(), 1, 60));
  const std::map<uint64_t, std::string> feed = ReadFeed(server.http(), end_before_a);
  const Delivered da = Check(a_receiver.requests(), id_a);
  const Delivered db = Check(b_receiver.requests(), b.id);
  for (const auto& e : da.errors) ADD_FAILURE() << "A: " << e;
  for (const auto& e : db.errors) ADD_FAILURE() << "B: " << e;
  // A: every change since it was first added, those made while it was out
  // of the config included.
  size_t a_missing = 0, b_missing = 0, b_dormant = 0;
  for (const auto& [cursor, json] : feed) {
    if (cursor > end_before_a && da.changes.count(cursor) == 0 && ++a_missing <= 3) {
      ADD_FAILURE() << "A never got " << json;
    }
    const bool dormant = json.find(R"("to":"dormant")") != std::string::npos;
    if (cursor > end_before_b && dormant) {
      ++b_dormant;
      if (db.changes.count(cursor) == 0 && ++b_missing <= 3)
        ADD_FAILURE() << "B never got " << json;
    }
  }
  EXPECT_EQ(a_missing, 0u);
  EXPECT_EQ(b_missing, 0u);
  EXPECT_GT(b_dormant, 0u);
  for (const auto& [cursor, json] : db.changes) {
    EXPECT_GT(cursor, end_before_b) << "B got a change older than itself";
    EXPECT_NE(json.find(R"("to":"dormant")"), std::string::npos) << "B's filter let " << json;
  }
  // /metrics has both, by id, caught up.
  auto metrics = tools::HttpRequest(server.http(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok() && metrics->status == 200);
  EXPECT_NE(metrics->body.find("tierstream_webhook_lag_changes{webhook=\"" + id_a + "\"} 0\n"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("tierstream_webhook_deliveries_total{webhook=\"" + b.id + "\"}"),
            std::string::npos);
  // SIGTERM while A's POST is held unanswered (its timeout is a minute):
  // serve stops at once, cleanly.
  a_receiver.Hold(true);
  const size_t held_at = a_receiver.requests().size();
  auto joined = tools::HttpRequest(server.http(), "POST", "/v1/events",
                                   R"({"event_id":"held-1","type":"join","user_id":"held-user",)"
                                   R"("ts":1763999999000})"
                                   "\n");
  ASSERT_TRUE(joined.ok() && joined->status == 200);
  const auto held_deadline = Clock::now() + std::chrono::seconds(10);
  while (a_receiver.requests().size() == held_at && Clock::now() < held_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(a_receiver.requests().size(), held_at);
  const auto t0 = Clock::now();
  EXPECT_EQ(server.Terminate(), 0);
  const double stop_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  a_receiver.Hold(false);
  EXPECT_LT(stop_seconds, 10.0) << "SIGTERM waited for the webhook's POST";
  std::printf(
      "webhooks: A, added with the feed at %llu, got %zu changes (resuming after %llu when put "
      "back); B, added at %llu, got %zu changes to dormant; SIGTERM with a POST held: %.2f s\n",
      static_cast<unsigned long long>(end_before_a), da.changes.size(),
      static_cast<unsigned long long>(end_with_a), static_cast<unsigned long long>(end_before_b),
      db.changes.size(), stop_seconds);
}

}  // namespace
}  // namespace tierstream
