// Forwards: how one partition hands events to another through
// PREFIX-repartition. The Router sorts a partition's decoded events: those
// of its own users go into its batch, the others (a record on the wrong
// partition, a join's referral credit for a referrer elsewhere) into
// Forward records for the partition of their user.
#ifndef TIERSTREAM_KAFKA_FORWARD_H_
#define TIERSTREAM_KAFKA_FORWARD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ingest/decoder.h"
#include "ingest/reject_log.h"
#include "pipeline/batch.h"

namespace tierstream::kafka {

// A forwarded log block is sent once it holds this much (Kafka's default
// message.max.bytes is 1 MB).
inline constexpr size_t kMaxForwardBytes = 512u << 10;

// A forward (a record of the repartition topic): the events one partition
// sends another, each with the offset of the input record it came from, so
// that the receiver can drop those it took before (state::ForwardMark):
//   'F' | varint source partition | varint n | n varint source offsets |
//   a log block (state/log_format.h) of the n events, in the same order.
struct Forward {
  uint32_t source = 0;
  std::vector<uint64_t> offsets;
  std::string block;
  void Encode(std::string* out) const;
};

// Decodes a forward; false if `value` is not one.
bool DecodeForward(std::string_view value, uint32_t* source, std::vector<uint64_t>* offsets,
                   std::string_view* block);

// Routes decoded events: those of the partition's users into the batch,
// the others into a log block per partition they are forwarded to.
class Router final : public ingest::DecodeSink {
 public:
  Router(uint32_t partitions, ingest::RejectLog* reject_log, std::string topic)
      : forwards_(partitions), reject_log_(reject_log), topic_(std::move(topic)) {}
  ~Router() override { WriteRejects(); }
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // `line_offsets`: each record's first line and its offset, in order.
  void Begin(pipeline::Batch* batch, uint32_t partition,
             const std::vector<std::pair<uint64_t, int64_t>>* line_offsets) {
    batch_ = batch;
    partition_ = partition;
    line_offsets_ = line_offsets;
    record_ = 0;
  }

  ingest::TsLimit ts_limit() const override { return batch_->ts_limit; }
  void OnEvent(const ingest::Event& e) override;
  void OnReject(uint64_t line, std::string_view reason, std::string_view raw) override;
  // Writes the rejected lines gathered so far to the reject log.
  void WriteRejects();

  // Forwards, by partition (none: nothing for it), each at most about
  // kMaxForwardBytes (but the events of one record stay in one).
  std::vector<std::vector<Forward>>& forwards() { return forwards_; }
  uint64_t TakeForwarded() { return std::exchange(forwarded_, 0); }

 private:
  void Place(const ingest::Event& e);

  pipeline::Batch* batch_ = nullptr;
  uint32_t partition_ = 0;
  const std::vector<std::pair<uint64_t, int64_t>>* line_offsets_ = nullptr;
  std::vector<std::vector<Forward>> forwards_;
  uint64_t forwarded_ = 0;
  size_t record_ = 0;    // the entry of line_offsets_ of the current event
  uint64_t offset_ = 0;  // its input offset
  ingest::RejectLog* reject_log_;
  std::string topic_;
  std::string rejects_;
  uint64_t reject_count_ = 0;
};

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_FORWARD_H_
