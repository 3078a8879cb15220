// Opening and closing a pipeline (the data dir, its store, the workers and
// the committer) and its small public accessors. What the parts do is in
// the files pipeline_impl.h lists.
#include "pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "common/thread_name.h"
#include "pipeline/data_dir.h"
#include "pipeline/pipeline_impl.h"

namespace tierstream::pipeline {

void Pipeline::Impl::LogAt(LogLevel level, const char* fmt, ...) const {
  if (!options.log_to_stderr) return;
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  if (n < 0) return;
  if (static_cast<size_t>(n) < sizeof(buf)) {
    Log(level, "tierstream: %s", buf);
    return;
  }
  std::string long_message(static_cast<size_t>(n) + 1, '\0');
  va_start(args, fmt);
  std::vsnprintf(long_message.data(), long_message.size(), fmt, args);
  va_end(args);
  long_message.pop_back();
  Log(level, "tierstream: %s", long_message.c_str());
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Pipeline::~Pipeline() {
  if (!impl_->closed) (void)Close();
}

Result<std::unique_ptr<Pipeline>> Pipeline::Open(const PipelineOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec)
    return Status::IoError("cannot create data dir " + options.data_dir + ": " + ec.message());
  auto store = state::Store::Open(options.data_dir + "/db", state::StoreOptions{});
  if (!store.ok()) return store.status();
  impl->store = std::move(store).value();
  impl->store_raw = impl->store.get();
  auto pins = PinDataDir(impl->store.get(), options.data_dir, options.shards, options.placement,
                         options.config);
  if (!pins.ok()) return pins.status();
  const uint32_t shards = pins->shards;
  impl->rules_changed = pins->rules_changed;
  impl->options.shards = shards;
  impl->reject_log =
      std::make_unique<ingest::RejectLog>(options.data_dir + "/rejected.ndjson", 64ull << 20);
  for (uint32_t i = 0; i < shards; ++i) {
    impl->workers.push_back(std::make_unique<Impl::Worker>(i, options.config, &impl->store_raw));
  }
  impl->rules_text = pins->rules;
  if (options.config.changes.enabled) {
    uint64_t last = 0, trimmed = 0;
    Status s = impl->store->GetChangeBounds(&last, &trimmed);
    if (!s.ok()) return s;
    impl->feed = std::make_unique<ChangeFeed>(last);
    impl->changes_trimmed.store(trimmed);
    for (auto& w : impl->workers) {
      s = impl->store->GetChangePosition(w->id, &w->feed_position);
      if (!s.ok()) return s;
    }
  }
  for (auto& w : impl->workers) {
    impl->ConfigureState(w.get());
    w->owned.store(options.placement != Placement::kKafka);
  }
  Impl* committer_impl = impl.get();
  impl->committer = std::thread([committer_impl] {
    NameThisThread("committer");
    committer_impl->CommitterMain();
  });
  Status s = impl->Recover();
  if (!s.ok()) return s;
  s = RecordRules(impl->store.get(), *pins);
  if (!s.ok()) return s;
  // The recovery figures are the caller's to log (recovery()): a server
  // reports them, an offline replay has none worth a line.
  Impl* raw = impl.get();
  for (auto& w : impl->workers) {
    Impl::Worker* wp = w.get();
    w->thread = std::thread([raw, wp] {
      NameThisThread("shard-" + std::to_string(wp->id));
      raw->WorkerMain(wp);
    });
  }
  impl->workers_running.store(true);
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

void Pipeline::Impl::ConfigureState(Worker* w) {
  const size_t shards = workers.size();
  w->state.set_memory_id_limit(
      std::max<size_t>(1024, options.dedup_memory_bytes / kBytesPerMemoryId / shards));
  w->state.set_warm_memory(options.warm_memory_bytes / shards);
  if (feed) w->state.set_record_changes(true);
}

uint32_t Pipeline::shards() const { return impl_->options.shards; }
const state::Config& Pipeline::config() const { return impl_->options.config; }
ingest::RejectLog* Pipeline::reject_log() { return impl_->reject_log.get(); }
const RecoveryStats& Pipeline::recovery() const { return impl_->recovery; }
int64_t Pipeline::watermark() const { return impl_->watermark.load(); }

void Pipeline::ObserveWatermark(int64_t t) { AtomicMax(&impl_->watermark, t); }

std::vector<uint64_t> Pipeline::ForwardMarksOf(uint32_t shard) const {
  const Impl::Worker& w = *impl_->workers[shard];
  MutexLock lock(&w.marks_mu);
  return w.forward_marks;
}

state::InputPosition Pipeline::InputPositionOf(uint32_t shard) const {
  const Impl::Worker& w = *impl_->workers[shard];
  return state::InputPosition{w.input_events.load(std::memory_order_acquire),
                              w.input_repartition.load(std::memory_order_acquire)};
}

bool Pipeline::DiskLow() const { return impl_->disk.Low(); }

int64_t Pipeline::WallClockMs() const { return impl_->WallNow(); }

bool Pipeline::HasCapacity() const {
  return impl_->inflight.load(std::memory_order_acquire) <
         static_cast<int64_t>(impl_->options.max_inflight_events);
}

void Pipeline::WaitForCapacity() const {
  while (!HasCapacity()) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

Status Pipeline::Close() {
  if (impl_->closed) return Status::Ok();
  impl_->closed = true;
  impl_->stopping.store(true);
  for (auto& w : impl_->workers) w->queue.enqueue(Task{nullptr});
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  impl_->StopCommitter();
  Status s;
  {
    MutexLock lock(&impl_->error_mu);
    s = impl_->first_worker_error;
  }
  impl_->store.reset();
  return s;
}

}  // namespace tierstream::pipeline
