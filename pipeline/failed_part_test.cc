// A part of the pipeline that throws (failed_part.cc): before the catch at
// each thread's entry, an exception that escaped a shard worker or the
// committer called std::terminate. Now nothing hangs after one: batches and
// queries are answered, Close() returns the failure, and a reopen recovers
// every batch acknowledged before it. The throws come from
// PipelineOptions::test_fault_hook.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/mutex.h"
#include "ingest/decoder.h"
#include "pipeline/pipeline.h"
#include "server/wire_json.h"
#include "tests/test_util.h"

namespace tierstream::pipeline {
namespace {

using tierstream::testing::Reference;
using tierstream::testing::TempDir;

// Aborts the test binary when its scope outlives `seconds`: a hang fails
// the test, loudly, instead of blocking ctest until its own timeout.
class HangGuard {
 public:
  explicit HangGuard(std::string what, int seconds = 60)
      : thread_([this, what = std::move(what), seconds] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
            std::fprintf(stderr, "HangGuard: %s did not finish within %d s\n", what.c_str(),
                         seconds);
            std::abort();
          }
        }) {}
  ~HangGuard() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  HangGuard(const HangGuard&) = delete;
  HangGuard& operator=(const HangGuard&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Where the hook throws, once armed; and what on_failure was told.
struct Fault {
  std::atomic<bool> armed{false};
  std::string where;          // set before arming
  int64_t shard = -1;         // -1: any
  std::atomic<int> fired{0};  // throws
  std::atomic<int> failures{0};
  Mutex mu;
  std::string reported ABSL_GUARDED_BY(mu);  // on_failure's Status
};

PipelineOptions FaultyOptions(const std::string& dir, const std::shared_ptr<Fault>& fault) {
  PipelineOptions o;
  o.data_dir = dir;
  o.shards = 2;
  o.log_to_stderr = false;
  o.min_free_bytes = 0;
  o.test_fault_hook = [fault](std::string_view where, uint32_t shard) {
    if (!fault->armed.load() || where != fault->where) return;
    if (fault->shard >= 0 && shard != static_cast<uint32_t>(fault->shard)) return;
    fault->fired.fetch_add(1);
    throw std::runtime_error("injected fault at " + std::string(where));
  };
  o.on_failure = [fault](const Status& failure) {
    MutexLock lock(&fault->mu);
    fault->failures.fetch_add(1);
    fault->reported = failure.ToString();
  };
  return o;
}

// Submits `lines` as one batch and waits for its outcome.
BatchOutcome SubmitOne(Pipeline& p, const std::vector<std::string>& lines) {
  const std::string text = tierstream::testing::Join(lines, 0, lines.size());
  ingest::PaddedBuffer buf(text.size());
  buf.Append(text);
  auto batch = p.NewBatch();
  BatchBuilder builder(batch.get(), nullptr, "test");
  ingest::Decoder decoder;
  decoder.DecodeLines(buf.view(), 1, &batch->arena, &builder);
  struct Slot {
    Mutex mu;
    CondVar cv{&mu};
    std::optional<BatchOutcome> outcome ABSL_GUARDED_BY(mu);
  };
  auto slot = std::make_shared<Slot>();
  p.Submit(std::move(batch), [slot](BatchOutcome o) {
    MutexLock lock(&slot->mu);
    slot->outcome = std::move(o);
    slot->cv.SignalAll();
  });
  MutexLock lock(&slot->mu);
  while (!slot->outcome.has_value()) slot->cv.Wait();
  return std::move(*slot->outcome);
}

// Submits `lines` in batches of 100, one at a time; true if all were acknowledged.
bool FeedAll(Pipeline& p, const std::vector<std::string>& lines) {
  bool ok = true;
  for (size_t i = 0; i < lines.size(); i += 100) {
    const size_t end = std::min(lines.size(), i + 100);
    ok &= SubmitOne(p, std::vector<std::string>(lines.begin() + static_cast<ptrdiff_t>(i),
                                                lines.begin() + static_cast<ptrdiff_t>(end)))
              .status.ok();
  }
  return ok;
}

std::vector<std::string> DiffAll(Pipeline& p, const Reference& ref) {
  std::vector<std::string> diffs;
  for (const auto& [id, want] : ref.profiles) {
    const std::optional<ProfileReport> r = Await(p, &Pipeline::GetUser, id);
    if (!r || !r->status.ok()) {
      diffs.push_back("no profile of " + id);
      continue;
    }
    for (auto& d : tierstream::testing::DiffProfile(server::RenderProfileJson(*r), want)) {
      diffs.push_back(d);
    }
  }
  const KpiReport kpis = Await(p, &Pipeline::GetKpis);
  if (!kpis.status.ok()) diffs.push_back("kpis: " + kpis.status.ToString());
  for (auto& d : tierstream::testing::DiffKpis(server::RenderKpisJson(kpis), ref.kpis, true)) {
    diffs.push_back("kpi " + d);
  }
  return diffs;
}

std::vector<std::string> Stream(uint64_t seed) {
  tools::GenOptions g;
  g.users = 400;
  g.days = 40;
  g.events = 6000;
  g.seed = seed;
  g.duplicate_rate = 0.03;
  g.invalid_rate = 0.01;
  return tierstream::testing::GenerateLines(g);
}

// A member joining, without a referrer: her batch has a part on her shard only.
std::string JoinLine(const std::string& user) {
  return R"({"event_id":"join-)" + user + R"(","type":"join","user_id":")" + user +
         R"(","ts":1763971200000})";
}

// An id that ShardOf places on `shard` of 2.
std::string UserOfShard(uint32_t shard, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string id = prefix + std::to_string(i);
    if (ShardOf(id, 2) == shard) return id;
  }
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

TEST(FailedPart, AWorkerThatThrowsRefusesWhatItIsSentAndReopeningRecoversWhatWasAcknowledged) {
  const std::vector<std::string> lines = Stream(31);
  const std::vector<std::string> before(lines.begin(), lines.begin() + 4000);
  const std::vector<std::string> after(lines.begin() + 4000, lines.end());
  const Reference ref = tierstream::testing::Evaluate(before);
  TempDir dir;
  auto fault = std::make_shared<Fault>();
  PipelineOptions o = FaultyOptions(dir.path(), fault);
  const std::string victim = UserOfShard(1, "victim");
  {
    HangGuard guard("the pipeline with a failed worker");
    auto p = std::move(Pipeline::Open(o)).value();
    ASSERT_TRUE(FeedAll(*p, before));
    fault->where = "worker.group";
    fault->shard = 1;
    fault->armed.store(true);
    // The batch in flight when shard 1's worker throws completes as failed.
    const BatchOutcome in_flight = SubmitOne(*p, {JoinLine(victim)});
    EXPECT_EQ(fault->fired.load(), 1);
    EXPECT_EQ(in_flight.status.code(), StatusCode::kUnavailable);
    EXPECT_TRUE(Contains(in_flight.status.message(), "shard 1 worker failed: injected fault"))
        << in_flight.status.ToString();
    EXPECT_EQ(fault->failures.load(), 1);
    {
      MutexLock lock(&fault->mu);
      EXPECT_TRUE(Contains(fault->reported,
                           "shard 1 worker failed: injected fault at "
                           "worker.group"))
          << fault->reported;
    }
    // Later batches are refused, both shards' parts.
    for (size_t i = 0; i < after.size(); i += 500) {
      const BatchOutcome later = SubmitOne(
          *p, std::vector<std::string>(
                  after.begin() + static_cast<ptrdiff_t>(i),
                  after.begin() + static_cast<ptrdiff_t>(std::min(after.size(), i + 500))));
      EXPECT_FALSE(later.status.ok());
      EXPECT_EQ(later.accepted + later.duplicates + later.rejected, 0u);
    }
    // Every query is answered: the failed shard's with the failure.
    const std::optional<ProfileReport> failed_profile = Await(*p, &Pipeline::GetUser, victim);
    ASSERT_TRUE(failed_profile.has_value());
    EXPECT_EQ(failed_profile->status.code(), StatusCode::kInternal);
    for (const auto& [id, want] : ref.profiles) {
      if (ShardOf(id, 2) != 0) continue;
      const std::optional<ProfileReport> r = Await(*p, &Pipeline::GetUser, id);
      ASSERT_TRUE(r.has_value()) << id;
      EXPECT_TRUE(r->status.ok()) << id << ": the healthy shard answers";
      EXPECT_TRUE(tierstream::testing::DiffProfile(server::RenderProfileJson(*r), want).empty());
    }
    const KpiReport kpis = Await(*p, &Pipeline::GetKpis);
    EXPECT_EQ(kpis.status.code(), StatusCode::kInternal);
    const TierPage page =
        Await(*p, &Pipeline::ListTierPage, state::Tier::kNew, std::string(), size_t{10}, false);
    EXPECT_EQ(page.status.code(), StatusCode::kInternal);
    EXPECT_EQ(Await(*p, &Pipeline::GetStats).shards, 2u);
    const std::vector<std::string> refusals = p->IngestRefusals();
    ASSERT_EQ(refusals.size(), 1u);
    EXPECT_TRUE(Contains(refusals[0], "a pipeline part failed: shard 1 worker failed: "))
        << refusals[0];
    const Status closed = p->Close();
    EXPECT_EQ(closed.code(), StatusCode::kInternal);
    EXPECT_TRUE(Contains(closed.message(), "injected fault")) << closed.ToString();
    EXPECT_EQ(fault->failures.load(), 1) << "on_failure runs once";
  }
  // The failed shard was not checkpointed: its log is replayed.
  o.test_fault_hook = nullptr;
  o.on_failure = nullptr;
  auto p = std::move(Pipeline::Open(o)).value();
  const std::vector<std::string> diffs = DiffAll(*p, ref);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
  EXPECT_FALSE(Await(*p, &Pipeline::GetUser, victim).has_value()) << "her batch was refused";
  EXPECT_TRUE(p->Close().ok());
}

TEST(FailedPart, ACommitterThatThrowsFailsItsCheckpointsAndCloseStillReturns) {
  const std::vector<std::string> lines = Stream(37);
  std::vector<std::string> acknowledged(lines.begin(), lines.begin() + 4000);
  const std::vector<std::string> after(lines.begin() + 4000, lines.end());
  TempDir dir;
  auto fault = std::make_shared<Fault>();
  PipelineOptions o = FaultyOptions(dir.path(), fault);
  // Every logged group starts a checkpoint; time alone starts none.
  o.checkpoint_log_events = 1;
  o.checkpoint_interval_ms = 600'000;
  {
    HangGuard guard("the pipeline with a failed committer");
    auto p = std::move(Pipeline::Open(o)).value();
    ASSERT_TRUE(FeedAll(*p, acknowledged));
    // A tier page checkpoints every shard with changes: none is left in flight.
    EXPECT_TRUE(
        Await(*p, &Pipeline::ListTierPage, state::Tier::kNew, std::string(), size_t{1}, false)
            .status.ok());
    fault->where = "committer.checkpoint";
    fault->armed.store(true);
    const std::vector<std::string> joins = {JoinLine(UserOfShard(0, "late")),
                                            JoinLine(UserOfShard(1, "late"))};
    ASSERT_TRUE(SubmitOne(*p, joins).status.ok()) << "logged before any checkpoint could fail";
    acknowledged.insert(acknowledged.end(), joins.begin(), joins.end());
    // Its checkpoint throws on the committer.
    while (fault->failures.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(fault->fired.load(), 1);
    {
      MutexLock lock(&fault->mu);
      EXPECT_TRUE(Contains(fault->reported, "committer failed: injected fault")) << fault->reported;
    }
    const BatchOutcome later = SubmitOne(*p, after);
    EXPECT_FALSE(later.status.ok());
    EXPECT_EQ(later.accepted, 0u);
    // The workers are healthy: what they hold is exact.
    const Reference ref = tierstream::testing::Evaluate(acknowledged);
    std::vector<std::string> diffs = DiffAll(*p, ref);
    EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
    EXPECT_EQ(Await(*p, &Pipeline::GetStats).shards, 2u);
    // A listing needs a checkpoint of the late joins, which fails.
    const TierPage page =
        Await(*p, &Pipeline::ListTierPage, state::Tier::kNew, std::string(), size_t{10}, false);
    EXPECT_EQ(page.status.code(), StatusCode::kInternal);
    const std::vector<std::string> refusals = p->IngestRefusals();
    ASSERT_EQ(refusals.size(), 1u);
    EXPECT_TRUE(Contains(refusals[0], "committer failed: injected fault")) << refusals[0];
    // Close()'s final checkpoints fail too, and return.
    const Status closed = p->Close();
    EXPECT_EQ(closed.code(), StatusCode::kInternal);
    EXPECT_TRUE(Contains(closed.message(), "committer failed: injected fault"))
        << closed.ToString();
    EXPECT_EQ(fault->failures.load(), 1);
  }
  // No failed checkpoint trimmed the log: the reopen replays it.
  o.test_fault_hook = nullptr;
  o.on_failure = nullptr;
  auto p = std::move(Pipeline::Open(o)).value();
  EXPECT_GT(p->recovery().log_events_replayed, 0u);
  const std::vector<std::string> diffs = DiffAll(*p, tierstream::testing::Evaluate(acknowledged));
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs[0];
  EXPECT_TRUE(p->Close().ok());
}

}  // namespace
}  // namespace tierstream::pipeline
