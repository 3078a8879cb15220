// HttpApi in process, no sockets: routing, parameter checks and answers
// against a real Pipeline on a temporary data dir.
#include "server/http_api.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "common/hash.h"
#include "tests/test_util.h"

namespace tierstream::server {
namespace {

using testing::TempDir;

// The connection's thread, played by the test's: Post()ed work runs in
// Run(), which returns once the reply came.
class TestExecutor : public Executor {
 public:
  void Post(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    work_.push_back(std::move(fn));
    cv_.notify_one();
  }
  void PostAfter(std::chrono::milliseconds delay, std::function<void()> fn) override {
    std::this_thread::sleep_for(delay);
    Post(std::move(fn));
  }
  // Runs posted work until `done()`.
  void RunUntil(const std::function<bool()>& done) {
    while (!done()) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !work_.empty(); }))
            << "no answer within 30 s";
        fn = std::move(work_.front());
        work_.pop_front();
      }
      fn();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> work_;
};

// `fault_hook`: PipelineOptions::test_fault_hook.
std::unique_ptr<pipeline::Pipeline> OpenAt(
    const std::string& dir, std::function<void(std::string_view, uint32_t)> fault_hook = nullptr) {
  pipeline::PipelineOptions o;
  o.data_dir = dir;
  o.shards = 2;
  o.log_to_stderr = false;
  o.min_free_bytes = 0;
  o.test_fault_hook = std::move(fault_hook);
  auto p = pipeline::Pipeline::Open(o);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

std::string Header(const Response& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "(none)";
}

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline_ = OpenAt(dir_.path());
    pointer_.store(pipeline_.get());
  }
  void TearDown() override {
    pointer_.store(nullptr);
    if (pipeline_) {
      ASSERT_TRUE(pipeline_->Close().ok());
    }
  }

  Response Call(std::string_view method, std::string_view target, std::string_view body = {}) {
    ingest::PaddedBuffer buffer;
    buffer.Append(body);
    Request request;
    request.method = method;
    request.target = target;
    request.body = &buffer;
    bool released = false;
    request.release_body = [&] { released = true; };
    auto executor = std::make_shared<TestExecutor>();
    std::optional<Response> answer;
    api_.Handle(request, executor, [&](Response r) { answer = std::move(r); });
    executor->RunUntil([&] { return answer.has_value(); });
    EXPECT_TRUE(released) << "the body is released by the answer at the latest";
    if (answer && answer->stream) {  // pull the streamed body whole
      std::vector<std::string> pieces;
      for (bool end = false; !end;) {
        std::optional<std::string> piece;
        answer->stream->Next([&](std::string p) { piece = std::move(p); });
        executor->RunUntil([&] { return piece.has_value(); });
        end = piece->empty();
        if (!end) pieces.push_back(std::move(*piece));
      }
      pieces_ = pieces.size();
      stream_failed_ = answer->stream->failed();
      for (const auto& p : pieces) answer->body += p;
      answer->stream.reset();
    }
    return answer.value_or(Response{});
  }

  // Posts `lines` (NDJSON) and expects them all accepted.
  void Ingest(const std::string& lines, int events) {
    Response r = Call("POST", "/v1/events", lines);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"accepted\":" + std::to_string(events)), std::string::npos) << r.body;
  }

  static std::string Join(const std::string& user, int n) {
    return R"({"event_id":"j-)" + user + std::to_string(n) + R"(","type":"join","user_id":")" +
           user + R"(","ts":1763971200000,"group_id":"g1"})" + "\n";
  }

  TempDir dir_;
  std::unique_ptr<pipeline::Pipeline> pipeline_;
  std::atomic<pipeline::Pipeline*> pointer_{nullptr};
  HttpApi api_{&pointer_, /*tier_export_page=*/2};
  size_t pieces_ = 0;           // of the last streamed answer
  bool stream_failed_ = false;  // ... and whether it ended in an error
};

TEST_F(HttpApiTest, UnknownPathsAre404) {
  for (const char* target : {"/", "/v1", "/v1/user/x", "/v1/tiers/new", "/v1/tiers/new/members"}) {
    Response r = Call("GET", target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.body, R"({"error":"no such resource"})");
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(Header(r, "Server"), "tierstream");
  }
}

TEST_F(HttpApiTest, WrongMethodsAre405WithAllow) {
  struct Case {
    const char* method;
    const char* target;
    const char* allow;
  };
  for (const Case& c :
       {Case{"POST", "/v1/kpis", "GET"}, Case{"GET", "/v1/events", "POST"},
        Case{"POST", "/healthz", "GET"}, Case{"DELETE", "/v1/users/a", "GET"},
        Case{"get", "/v1/kpis", "GET"}, Case{"PUT", "/v1/tiers/new/users", "GET"}}) {
    Response r = Call(c.method, c.target);
    EXPECT_EQ(r.status, 405) << c.method << " " << c.target;
    EXPECT_EQ(Header(r, "Allow"), c.allow);
    EXPECT_EQ(r.body, std::string(R"({"error":"method not allowed; use )") + c.allow + "\"}");
    EXPECT_EQ(Header(r, "Server"), "(none)");  // as before the split
  }
}

TEST_F(HttpApiTest, BadTierListingParametersAre400) {
  const std::pair<const char*, const char*> cases[] = {
      {"/v1/tiers/new/users?limit=0", "limit: must be an integer in 1..10000"},
      {"/v1/tiers/new/users?limit=10001", "limit: must be an integer in 1..10000"},
      {"/v1/tiers/new/users?limit=5x", "limit: must be an integer in 1..10000"},
      {"/v1/tiers/new/users?limit=", "limit: must be an integer in 1..10000"},
      {"/v1/tiers/new/users?after=%zz", "after: malformed percent-encoding"},
      {"/v1/tiers/new/users?limit=%4", "limit: malformed percent-encoding"},
      {"/v1/tiers/new/users?format=xml", "format: must be json or ndjson"},
      {"/v1/tiers/new/users?fields=all&format=ndjson", "fields: must be profile"},
      {"/v1/tiers/new/users?fields=profile", "fields: needs format=ndjson"},
      {"/v1/tiers/new/users?format=ndjson&limit=5",
       "limit: not with format=ndjson, which streams the whole tier (after= resumes it)"},
      {"/v1/tiers/gold/users",
       "tier: must be one of left, high_value, new, active, dormant, regular"},
  };
  for (const auto& [target, message] : cases) {
    Response r = Call("GET", target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.body, std::string(R"({"error":")") + message + "\"}") << target;
  }
}

TEST_F(HttpApiTest, BadChangeFeedParametersAre400) {
  const std::pair<const char*, const char*> cases[] = {
      {"/v1/changes?limit=0", "limit: must be an integer in 1..10000"},
      {"/v1/changes?limit=10001", "limit: must be an integer in 1..10000"},
      {"/v1/changes?wait_ms=60001", "wait_ms: must be an integer in 0..60000"},
      {"/v1/changes?after=x",
       "after: must be a cursor this feed gave (\\\"next\\\", a change's \\\"cursor\\\") or "
       "\\\"end\\\""},
      {"/v1/changes?to=gold",
       "to: must be tiers among left, high_value, new, active, dormant, regular, comma-separated"},
      {"/v1/changes/stream?limit=5", "limit: not with the stream"},
  };
  for (const auto& [target, message] : cases) {
    Response r = Call("GET", target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.body, std::string(R"({"error":")") + message + "\"}") << target;
  }
}

TEST_F(HttpApiTest, HealthAndReadinessShapes) {
  Response r = Call("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind(R"({"status":"ok","as_of":null,)", 0), 0u) << r.body;
  EXPECT_EQ(r.body.back(), '}');
  r = Call("GET", "/readyz?verbose=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"ready":true})");

  Ingest(Join("a", 1), 1);
  r = Call("GET", "/healthz");
  EXPECT_EQ(r.body.rfind(R"({"status":"ok","as_of":1763971200000,)", 0), 0u) << r.body;
}

TEST_F(HttpApiTest, WhileRecoveringOnlyHealthAnswers) {
  pointer_.store(nullptr);
  Response r = Call("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"starting","reasons":["recovering"]})");
  r = Call("GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"ready":false,"reasons":["recovering"]})");
  for (const char* target : {"/v1/kpis", "/v1/users/a", "/nowhere"}) {
    r = Call("GET", target);
    EXPECT_EQ(r.status, 503) << target;
    EXPECT_EQ(r.body, R"({"error":"starting: recovery in progress"})");
  }
}

TEST_F(HttpApiTest, UsersAreFoundByPercentDecodedId) {
  Ingest(Join("u/1", 1) + Join("b c", 2), 2);
  Response r = Call("GET", "/v1/users/u%2F1");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("user_id":"u/1")"), std::string::npos) << r.body;
  r = Call("GET", "/v1/users/b%20c");
  EXPECT_EQ(r.status, 200) << r.body;
  r = Call("GET", "/v1/users/nobody");
  EXPECT_EQ(r.status, 404);
  r = Call("GET", "/v1/users/");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"user_id: must be 1..128 bytes"})");
  r = Call("GET", "/v1/users/" + std::string(129, 'x'));
  EXPECT_EQ(r.status, 400);
  r = Call("GET", "/v1/users/a%G0");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"user_id: malformed percent-encoding"})");
}

TEST_F(HttpApiTest, ExplainAnswersHerRulesNextChangeAndWhatSheLacks) {
  // Joined 2025-11-24 (+08:00), one message, one order of 123.50: new.
  Ingest(
      Join("a", 1) +
          R"({"event_id":"m1","type":"message","user_id":"a","ts":1763971201000})"
          "\n"
          R"({"event_id":"o1","type":"order","user_id":"a","ts":1763971202000,"order_id":"o1","amount":123.5})"
          "\n",
      3);
  Response r = Call("GET", "/v1/users/a/explain");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(Header(r, "Server"), "tierstream");
  EXPECT_EQ(
      r.body,
      R"({"user_id":"a","as_of":1763971202000,"tier":"new","rules":[)"
      R"({"tier":"left","holds":false,"values":{"member":true},"thresholds":{"member":false}},)"
      R"({"tier":"high_value","holds":false,"values":{"spend_30d":123.50,"repeat_orders":0},)"
      R"("thresholds":{"spend_30d":500.00,"repeat_orders":3}},)"
      R"({"tier":"new","holds":true,"values":{"joined_at":1763971200000,"days_since_joined":0},)"
      R"("thresholds":{"days_since_joined":30}},)"
      R"({"tier":"active","holds":false,"values":{"interactions_7d":1},"thresholds":{"interactions_7d":3}},)"
      R"({"tier":"dormant","holds":false,"values":{"interactions_7d":1},"thresholds":{"interactions_7d":0}},)"
      R"({"tier":"regular","holds":true,"values":{},"thresholds":{}}],)"
      // Day 30 after 2025-11-24 starts at 2025-12-24T00:00+08:00; her
      // message has left the 7-day window by then.
      R"("next_change":{"at":1766505600000,"tier":"dormant","because":"30 days since she joined on 2025-11-24"},)"
      R"("to_reach":{"high_value":{"join":false,"spend_30d":376.50,"orders":3}}})");
  // The same tier as her profile.
  EXPECT_NE(Call("GET", "/v1/users/a").body.find(R"("tier":"new")"), std::string::npos);

  // A left member: no change by time; a join brings her back.
  Ingest(R"({"event_id":"l1","type":"leave","user_id":"a","ts":1763971203000})"
         "\n",
         1);
  r = Call("GET", "/v1/users/a/explain");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("tier":"left")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("next_change":null)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("new":{"join":true,"by":1766505599999})"), std::string::npos) << r.body;
}

TEST_F(HttpApiTest, ExplainIsRoutedLikeTheProfile) {
  Ingest(Join("u/1", 1) + Join("explain", 2), 2);
  Response r = Call("GET", "/v1/users/u%2F1/explain");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.rfind(R"({"user_id":"u/1","as_of":1763971200000,"tier":"new",)", 0), 0u)
      << r.body;
  r = Call("GET", "/v1/users/explain");  // the profile of the user "explain"
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("member":true)"), std::string::npos) << r.body;
  r = Call("GET", "/v1/users/explain/explain");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("rules":[)"), std::string::npos) << r.body;
  r = Call("GET", "/v1/users/nobody/explain");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"unknown user"})");
  r = Call("GET", "/v1/users//explain");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"user_id: must be 1..128 bytes"})");
  r = Call("GET", "/v1/users/a%G0/explain");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"user_id: malformed percent-encoding"})");
  r = Call("POST", "/v1/users/u%2F1/explain");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "GET");
}

TEST_F(HttpApiTest, KpisCountTheIngestedMembers) {
  Ingest(Join("a", 1) + Join("b", 2) + Join("c", 3), 3);
  Response r = Call("GET", "/v1/kpis");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("members":3)"), std::string::npos) << r.body;
}

TEST_F(HttpApiTest, MetricsCountWhatWasIngested) {
  Ingest(Join("a", 1) + Join("b", 2) + Join("c", 3), 3);
  Response r = Call("POST", "/v1/events", "not json\n" + Join("a", 1));  // a re-send
  ASSERT_EQ(r.status, 200) << r.body;
  r = Call("GET", "/metrics");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.content_type.rfind("text/plain; version=0.0.4", 0), 0u);
  for (const char* line : {
           R"(tierstream_ingest_events_total{source="http",outcome="accepted"} 3)",
           R"(tierstream_ingest_events_total{source="http",outcome="duplicate"} 1)",
           R"(tierstream_ingest_events_total{source="http",outcome="rejected"} 1)",
           R"(tierstream_ingest_events_total{source="tcp",outcome="accepted"} 0)",
           R"(tierstream_ingest_rejections_total{source="http",reason="invalid_json"} 1)",
           R"(tierstream_ingest_ack_latency_seconds_count{source="http"} 2)",
           R"(tierstream_members 3)",
           R"(tierstream_tier_users{tier="new"} 3)",
           R"(tierstream_shards 2)",
           R"(tierstream_ready 1)",
       }) {
    EXPECT_NE(r.body.find("\n" + std::string(line) + "\n"), std::string::npos) << line;
  }
  // The process's counter agrees with the pipeline's durable one.
  Response k = Call("GET", "/v1/kpis");
  EXPECT_NE(k.body.find(R"("events_accepted":3,)"), std::string::npos) << k.body;

  r = Call("POST", "/metrics");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "GET");
  pointer_.store(nullptr);  // recovering
  r = Call("GET", "/metrics");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":"starting: recovery in progress"})");
}

TEST_F(HttpApiTest, BadIngestBodiesAreCountedOrRefused) {
  Response r = Call("POST", "/v1/events", "not json\n" + Join("a", 1));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("accepted":1)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("rejected":1)"), std::string::npos) << r.body;
  r = Call("POST", "/v1/events", "[{\"event_id\":");  // a broken array: nothing taken
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST_F(HttpApiTest, TierListingsPageAndStream) {
  Ingest(Join("m1", 1) + Join("m2", 2) + Join("m3", 3), 3);
  Response r = Call("GET", "/v1/tiers/new/users?limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("users":["m1","m2"])"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("next_after":"m2")"), std::string::npos) << r.body;
  r = Call("GET", "/v1/tiers/new/users?limit=2&after=m2");
  EXPECT_NE(r.body.find(R"("users":["m3"])"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("next_after":null)"), std::string::npos) << r.body;

  r = Call("GET", "/v1/tiers/new/users?format=ndjson");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  EXPECT_EQ(r.body, "{\"user_id\":\"m1\"}\n{\"user_id\":\"m2\"}\n{\"user_id\":\"m3\"}\n");
  EXPECT_EQ(pieces_, 2u);  // pages of tier_export_page (2) members
  r = Call("GET", "/v1/tiers/new/users?format=ndjson&after=m1&fields=profile");
  EXPECT_EQ(testing::SplitLines(r.body).size(), 2u) << r.body;
  EXPECT_EQ(r.body.rfind("{", 0), 0u);
  EXPECT_FALSE(stream_failed_);
  r = Call("GET", "/v1/tiers/dormant/users?format=ndjson");
  EXPECT_EQ(r.body, "");  // no member: an empty body, ended at once
}

// A shard whose worker failed (an exception escaped it) answers every query
// with the failure: GET /v1/users/{id} on it (a ProfileReport with a failed
// status: its 503 had no test), the KPIs and a tier page are 503 naming it,
// and a streamed listing ends with an error line and is left incomplete (it
// used to end silently, as if the tier were complete). The other shard's
// users are still served.
TEST_F(HttpApiTest, AFailedShardAnswers503AndCutsAStreamedListingShort) {
  pointer_.store(nullptr);
  ASSERT_TRUE(pipeline_->Close().ok());
  auto armed = std::make_shared<std::atomic<bool>>(false);
  pipeline_ = OpenAt(dir_.path(), [armed](std::string_view where, uint32_t shard) {
    if (armed->load() && where == "worker.group" && shard == 1) {
      throw std::runtime_error("injected fault");
    }
  });
  pointer_.store(pipeline_.get());
  auto user_of_shard = [](uint32_t shard) {
    for (int i = 0;; ++i) {
      std::string id = "m" + std::to_string(i);
      if (ShardOf(id, 2) == shard) return id;
    }
  };
  const std::string healthy = user_of_shard(0), failing = user_of_shard(1);
  Ingest(Join(healthy, 1) + Join(failing, 2), 2);
  armed->store(true);
  Response r = Call("POST", "/v1/events", Join(failing, 3));
  EXPECT_EQ(r.status, 503) << r.body;
  const std::string failure = "a pipeline part failed: shard 1 worker failed: injected fault";
  EXPECT_NE(r.body.find(failure), std::string::npos) << r.body;

  r = Call("GET", "/v1/users/" + healthy);
  EXPECT_EQ(r.status, 200) << r.body;
  r = Call("GET", "/v1/users/" + failing);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":")" + failure + "\"}");
  r = Call("GET", "/v1/kpis");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":")" + failure + "\"}");
  r = Call("GET", "/v1/tiers/new/users?limit=10");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":")" + failure + "\"}");
  r = Call("GET", "/v1/tiers/new/users?format=ndjson");
  EXPECT_EQ(r.status, 200);  // sent before the first page was read
  EXPECT_EQ(r.body, R"({"error":")" + failure + "\"}\n");
  EXPECT_TRUE(stream_failed_) << "the session must not end the body as complete";

  r = Call("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind(R"({"status":"degraded","reasons":[")" + failure, 0), 0u) << r.body;
  r = Call("GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find(failure + "; restart the server"), std::string::npos) << r.body;

  pointer_.store(nullptr);
  EXPECT_FALSE(pipeline_->Close().ok());
  pipeline_.reset();
}

}  // namespace
}  // namespace tierstream::server
