// Batch: the unit a listener hands to the pipeline — decoded events already
// routed to their shards (BatchBuilder), with the arena that owns their
// strings — and BatchOutcome, what the pipeline answers for it once every
// accepted event of it is durable and applied.
//
// Ownership: a listener fills a Batch it owns, then gives it to
// Pipeline::Submit, after which the pipeline owns it (its completion counters
// decide which shard's worker deletes it) and the listener must not touch it.
// Thread safety: confined while it is being filled; after Submit, its events
// are read by the workers of their shards, and its completion counters are
// atomic and the pipeline's alone (internal::BatchAccess).
#ifndef TIERSTREAM_PIPELINE_BATCH_H_
#define TIERSTREAM_PIPELINE_BATCH_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/arena.h"
#include "common/hash.h"
#include "common/status.h"
#include "ingest/decoder.h"
#include "ingest/event.h"
#include "ingest/reject_log.h"
#include "state/input_position.h"

namespace tierstream::pipeline {

inline constexpr size_t kMaxErrorsListed = 100;  // SPEC §6

struct BatchOutcome {
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  // `rejected` by the class of each line's reason (ingest::ClassifyReject).
  std::array<uint64_t, ingest::kRejectReasonCount> rejected_by_reason{};
  std::vector<ingest::LineError> errors;  // at most kMaxErrorsListed
  Status status;  // not OK: some events could not be made durable (none of those applied)
};

namespace internal {
class BatchAccess;  // the pipeline's view of a Batch's completion (pipeline_impl.h)
}  // namespace internal

// The Kafka mode: what a batch read from one partition covers of its shard's
// input. `start` is where the shard stood before its records, `end` after
// them. A shard takes a batch only if it stands at `start` or later: after a
// batch of the partition failed, the later ones are refused too (they would
// skip its records) until the reader rewinds to the shard's position.
struct InputSpan {
  uint32_t shard = 0;
  state::InputPosition start;
  state::InputPosition end;
  // The forward marks its forwarded events moved (state::ForwardMark).
  std::vector<state::ForwardMark> forwards;
};

// Decoded events routed to shards, with the arena that owns their strings.
class Batch {
 public:
  explicit Batch(uint32_t shards) : per_shard(shards) {}

  Arena arena;
  std::vector<std::vector<ingest::Event>> per_shard;
  uint64_t events = 0;  // own events (credits excluded)
  uint64_t rejected = 0;
  std::array<uint64_t, ingest::kRejectReasonCount> rejected_by_reason{};  // sums to `rejected`
  std::vector<ingest::LineError> errors;
  // Events dated later are rejected (the future guard; set by NewBatch).
  ingest::TsLimit ts_limit;
  // How its events are routed to shards (the pipeline's; set by NewBatch).
  Placement placement = Placement::kHash64;
  // The Kafka mode: the batch holds the records of one partition, and every
  // event in it belongs to that partition's shard (the others were forwarded
  // to theirs); that shard logs `input->end` with them, counts the rejected
  // lines, and takes the batch even if no event of it is left. The journal
  // mode: none.
  std::optional<InputSpan> input;

 private:
  friend class internal::BatchAccess;

  // Completion: set by Submit, counted down by each shard that completes
  // its part; the last one answers `done_` and deletes the batch.
  std::atomic<uint32_t> pending_{0};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> duplicates_{0};
  std::atomic<bool> failed_{false};
  uint64_t weight_ = 0;        // events in flight on its account (backpressure)
  uint32_t reject_shard_ = 0;  // the shard that logs and counts `rejected`
  std::function<void(BatchOutcome)> done_;
};

// The router: a DecodeSink that fills a Batch, routing each event to its
// user's shard and a join's referral credit to the referrer's shard, and
// recording rejections (in the batch, and in the reject log when given).
// Thread safety: confined (one per listener session).
class BatchBuilder final : public ingest::DecodeSink {
 public:
  // `reject_log` may be null; `source` names the listener in the reject log.
  BatchBuilder(Batch* batch, ingest::RejectLog* reject_log, std::string source);
  // Writes the reject log records still held.
  ~BatchBuilder() override;
  BatchBuilder(const BatchBuilder&) = delete;
  BatchBuilder& operator=(const BatchBuilder&) = delete;
  void OnEvent(const ingest::Event& event) override;
  void OnReject(uint64_t line, std::string_view reason, std::string_view raw) override;
  ingest::TsLimit ts_limit() const override { return batch_->ts_limit; }
  void Reset(Batch* batch) { batch_ = batch; }

 private:
  void WriteRejects();

  Batch* batch_;
  ingest::RejectLog* reject_log_;
  std::string source_;
  std::string rejects_;  // reject log records not written yet (up to 64 KiB)
  uint64_t reject_count_ = 0;
  uint64_t rejects_skipped_ = 0;  // the reject log is full: only counted
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_BATCH_H_
