// The way in: BatchBuilder routes decoded events to their shards, Submit
// hands a batch to the shards' queues (or refuses it whole), and the last
// shard to complete its part answers the batch.
#include "pipeline/batch.h"

#include <memory>
#include <string>
#include <utility>

#include "pipeline/pipeline_impl.h"

namespace tierstream::pipeline {

using ingest::Event;
using ingest::EventType;

BatchBuilder::BatchBuilder(Batch* batch, ingest::RejectLog* reject_log, std::string source)
    : batch_(batch), reject_log_(reject_log), source_(std::move(source)) {}

BatchBuilder::~BatchBuilder() { WriteRejects(); }

void BatchBuilder::WriteRejects() {
  if (reject_log_ != nullptr) {
    reject_log_->Write(rejects_, reject_count_);
    reject_log_->Write({}, rejects_skipped_);
  }
  rejects_.clear();
  reject_count_ = 0;
  rejects_skipped_ = 0;
}

void BatchBuilder::OnEvent(const Event& event) {
  const auto shards = static_cast<uint32_t>(batch_->per_shard.size());
  batch_->per_shard[ShardOf(event.user_id, shards, batch_->placement)].push_back(event);
  ++batch_->events;
  if (event.type == EventType::kJoin && !event.referrer_id.empty() &&
      event.referrer_id != event.user_id) {
    Event credit = event;
    credit.type = EventType::kReferralCredit;
    credit.user_id = event.referrer_id;
    credit.referrer_id = event.user_id;
    batch_->per_shard[ShardOf(credit.user_id, shards, batch_->placement)].push_back(credit);
  }
}

void BatchBuilder::OnReject(uint64_t line, std::string_view reason, std::string_view raw) {
  ++batch_->rejected;
  ++batch_->rejected_by_reason[static_cast<size_t>(ingest::ClassifyReject(reason))];
  if (batch_->errors.size() < kMaxErrorsListed) {
    batch_->errors.push_back(ingest::LineError{line, std::string(reason)});
  }
  if (reject_log_ == nullptr) return;
  if (reject_log_->full()) {  // only counted: not worth formatting
    ++rejects_skipped_;
    return;
  }
  ingest::RejectLog::Format(source_, line, reason, raw, &rejects_);
  ++reject_count_;
  if (rejects_.size() >= 64 * 1024) WriteRejects();
}

std::unique_ptr<Batch> Pipeline::NewBatch() const {
  auto batch = std::make_unique<Batch>(shards());
  batch->placement = impl_->options.placement;
  const int64_t ahead = impl_->options.config.max_future_ms;
  if (ahead > 0) batch->ts_limit = ingest::TsLimit{impl_->WallNow() + ahead, ahead};
  return batch;
}

void Pipeline::Submit(std::unique_ptr<Batch> batch, std::function<void(BatchOutcome)> done) {
  using internal::BatchAccess;
  Batch* b = batch.release();
  BatchAccess::done(b) = std::move(done);
  uint32_t parts = 0;
  uint64_t weight = 0;
  for (const auto& v : b->per_shard) {
    parts += v.empty() ? 0 : 1;
    weight += v.size();
  }
  if (impl_->failed.load(std::memory_order_acquire) ||
      (weight > 0 && (impl_->disk.Low() || impl_->store->failing()))) {
    // Nothing of it is taken (rejections included): the sender re-sends later.
    BatchAccess::failed(b).store(true);
    b->rejected = 0;
    b->rejected_by_reason = {};
    b->errors.clear();
    BatchAccess::pending(b).store(1);
    impl_->CompletePart(b);
    return;
  }
  BatchAccess::weight(b) = weight;
  impl_->inflight.fetch_add(static_cast<int64_t>(weight), std::memory_order_acq_rel);
  // Decide the targets first: once enqueued, a part may complete and the
  // last one deletes the batch, so `b` must not be read after that.
  uint32_t targets[256];
  uint32_t ntargets = 0;
  // A batch of a partition goes to its shard first, whatever it holds.
  if (b->input) targets[ntargets++] = b->input->shard;
  for (uint32_t i = 0; i < b->per_shard.size(); ++i) {
    if (!b->per_shard[i].empty() && !(b->input && b->input->shard == i)) targets[ntargets++] = i;
  }
  // Rejected lines are counted, durably, by one shard: the partition's, the
  // first with a part, or shard 0 for a batch of rejections only.
  if (ntargets == 0 && b->rejected > 0) targets[ntargets++] = 0;
  BatchAccess::reject_shard(b) = ntargets > 0 ? targets[0] : 0;
  parts = ntargets;
  if (parts == 0) {
    BatchAccess::pending(b).store(1);
    impl_->CompletePart(b);
    return;
  }
  BatchAccess::pending(b).store(parts, std::memory_order_release);
  for (uint32_t k = 0; k < ntargets; ++k) impl_->workers[targets[k]]->queue.enqueue(Task{b});
}

void Pipeline::Impl::FinishBatch(Batch* b) {
  using internal::BatchAccess;
  BatchOutcome outcome;
  outcome.accepted = BatchAccess::accepted(b).load();
  outcome.duplicates = BatchAccess::duplicates(b).load();
  outcome.rejected = b->rejected;
  outcome.rejected_by_reason = b->rejected_by_reason;
  outcome.errors = std::move(b->errors);
  if (BatchAccess::failed(b).load()) outcome.status = Status::Unavailable(RefusalMessage());
  inflight.fetch_sub(static_cast<int64_t>(BatchAccess::weight(b)), std::memory_order_acq_rel);
  auto done = std::move(BatchAccess::done(b));
  delete b;  // owned by the pending counter since Submit()
  if (done) done(std::move(outcome));
}

std::string Pipeline::Impl::RefusalMessage() const {
  if (failed.load(std::memory_order_acquire)) return Failure().ToString() + "; restart the server";
  if (disk.Low()) return "disk space is below the watermark; ingest resumes when space returns";
  const std::string failure = store->failure();
  if (failure.empty()) return "the store could not make the batch durable";
  return "the store could not make the batch durable (" + failure +
         "); ingest resumes by itself once the store recovers";
}

}  // namespace tierstream::pipeline
