// The hand-off from a listener to the shard workers: BatchBuilder routing
// decoded events into per-shard vectors, and a moodycamel queue carrying
// batches from a producer thread to a consumer thread (as Pipeline::Submit
// and a worker's wait_dequeue_bulk do).
#include <benchmark/benchmark.h>
#include <concurrentqueue/blockingconcurrentqueue.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/synthetic_events.h"
#include "common/hash.h"
#include "pipeline/pipeline.h"

namespace tierstream::pipeline {
namespace {

using bench::UserId;
using ingest::Event;
using ingest::EventType;

constexpr int kUsers = 100000;

// The decoder benchmark's mix: messages, orders, reactions, and joins that
// name a referrer (each also routes a referral credit).
bench::EventList MakeEvents(int n) {
  bench::EventList list;
  for (int i = 0; i < n; ++i) {
    const std::string user = UserId(i % kUsers);
    const int64_t ts = bench::kStartMs + i * 997;
    switch (i % 4) {
      case 0:
        list.Add(EventType::kMessage, user, ts);
        break;
      case 1:
        list.Add(EventType::kOrder, user, ts, 12950);
        break;
      case 2:
        list.Add(EventType::kReaction, user, ts);
        break;
      default:
        list.Add(EventType::kJoin, user, ts, 0, UserId((i * 7) % kUsers));
    }
  }
  return list;
}

void Route(const bench::EventList& events, Batch* batch) {
  BatchBuilder builder(batch, nullptr /*reject_log*/, "bench");
  for (const Event& e : events.events()) builder.OnEvent(e);
}

// "" if every event and credit sits in its user's shard.
std::string CheckRouted(const bench::EventList& events, const Batch& batch) {
  size_t joins = 0;
  for (const Event& e : events.events()) {
    joins += e.type == EventType::kJoin && !e.referrer_id.empty() && e.referrer_id != e.user_id;
  }
  const auto shards = static_cast<uint32_t>(batch.per_shard.size());
  size_t routed = 0;
  for (uint32_t s = 0; s < shards; ++s) {
    for (const Event& e : batch.per_shard[s]) {
      if (ShardOf(e.user_id, shards) != s) return "an event sits in another user's shard";
    }
    routed += batch.per_shard[s].size();
  }
  if (batch.events != events.size() || routed != events.size() + joins) {
    return "events or credits lost";
  }
  return "";
}

void BM_BatchBuilder_Route(benchmark::State& state) {
  const int n = 100000;
  const auto shards = static_cast<uint32_t>(state.range(0));
  const bench::EventList events = MakeEvents(n);
  {  // Verify before timing.
    Batch check(shards);
    Route(events, &check);
    if (const std::string wrong = CheckRouted(events, check); !wrong.empty()) {
      state.SkipWithError(wrong.c_str());
      return;
    }
  }
  for (auto _ : state) {
    Batch batch(shards);
    Route(events, &batch);
    benchmark::DoNotOptimize(batch.per_shard.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_BatchBuilder_Route)->ArgName("shards")->Arg(2)->Arg(8)->Unit(benchmark::kMillisecond);

// ---- queue hand-off -----------------------------------------------------------

struct Task {
  Batch* batch = nullptr;  // null: stop
};

constexpr size_t kMaxGroupBatches = 64;  // as a pipeline worker dequeues

// A worker stand-in: dequeues batches in groups and reads every event of its
// part (a checksum of ts), so the events' cache lines cross cores as in the
// pipeline.
class Consumer {
 public:
  Consumer() : thread_([this] { Run(); }) {}
  ~Consumer() {
    queue_.enqueue(Task{});
    thread_.join();
  }
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  void Submit(Batch* batch) { queue_.enqueue(Task{batch}); }
  // Waits until `batches` batches in all were consumed.
  void WaitFor(uint64_t batches) const {
    while (consumed_.load(std::memory_order_acquire) < batches) std::this_thread::yield();
  }
  uint64_t events() const { return events_.load(std::memory_order_acquire); }
  int64_t checksum() const { return checksum_.load(std::memory_order_acquire); }

 private:
  void Run() {
    std::vector<Task> tasks(kMaxGroupBatches);
    for (;;) {
      const size_t n = queue_.wait_dequeue_bulk(tasks.data(), tasks.size());
      uint64_t events = 0;
      int64_t sum = 0;
      bool stop = false;
      for (size_t i = 0; i < n; ++i) {
        if (tasks[i].batch == nullptr) {
          stop = true;
          continue;
        }
        for (const Event& e : tasks[i].batch->per_shard[0]) sum += e.ts_ms;
        events += tasks[i].batch->per_shard[0].size();
      }
      events_.fetch_add(events, std::memory_order_relaxed);
      checksum_.fetch_add(sum, std::memory_order_relaxed);
      consumed_.fetch_add(n - (stop ? 1 : 0), std::memory_order_release);
      if (stop) return;
    }
  }

  moodycamel::BlockingConcurrentQueue<Task> queue_;
  std::atomic<uint64_t> consumed_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<int64_t> checksum_{0};
  std::thread thread_;
};

// 64k events per iteration, in batches of range(0) events: 1 is one request
// per event (pure queue overhead), 1024 a typical HTTP/TCP batch.
void BM_Queue_HandOff(benchmark::State& state) {
  const size_t per_batch = static_cast<size_t>(state.range(0));
  const size_t total = 65536;
  const size_t nbatches = total / per_batch;
  const bench::EventList events = MakeEvents(static_cast<int>(total));
  std::vector<std::unique_ptr<Batch>> batches;
  int64_t expected_sum = 0;
  for (size_t b = 0; b < nbatches; ++b) {
    batches.push_back(std::make_unique<Batch>(1));
    for (size_t k = 0; k < per_batch; ++k) {
      const Event& e = events.events()[b * per_batch + k];
      batches.back()->per_shard[0].push_back(e);
      expected_sum += e.ts_ms;
    }
  }
  Consumer consumer;
  uint64_t submitted = 0;
  {  // Verify before timing: one round arrives whole.
    for (auto& b : batches) consumer.Submit(b.get());
    submitted += nbatches;
    consumer.WaitFor(submitted);
    if (consumer.events() != total || consumer.checksum() != expected_sum) {
      state.SkipWithError("the consumer did not see every event");
      return;
    }
  }
  for (auto _ : state) {
    for (auto& b : batches) consumer.Submit(b.get());
    submitted += nbatches;
    consumer.WaitFor(submitted);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(total));
  state.counters["batches_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(nbatches),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Queue_HandOff)
    ->ArgName("batch_events")
    ->Arg(1)
    ->Arg(64)
    ->Arg(1024)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace tierstream::pipeline

BENCHMARK_MAIN();
