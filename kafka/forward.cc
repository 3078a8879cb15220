#include "kafka/forward.h"

#include <algorithm>

#include "common/hash.h"
#include "common/varint.h"
#include "state/log_format.h"

namespace tierstream::kafka {

using ingest::Event;
using ingest::EventType;

void Forward::Encode(std::string* out) const {
  out->push_back('F');
  PutVarint64(out, source);
  PutVarint64(out, offsets.size());
  for (uint64_t o : offsets) PutVarint64(out, o);
  out->append(block);
}

bool DecodeForward(std::string_view value, uint32_t* source, std::vector<uint64_t>* offsets,
                   std::string_view* block) {
  uint64_t src = 0, count = 0;
  if (value.empty() || value[0] != 'F') return false;
  value.remove_prefix(1);
  if (!GetVarint64(&value, &src) || src > UINT32_MAX || !GetVarint64(&value, &count) ||
      count > value.size()) {
    return false;
  }
  offsets->resize(count);
  for (uint64_t& o : *offsets) {
    if (!GetVarint64(&value, &o)) return false;
  }
  *source = static_cast<uint32_t>(src);
  *block = value;
  return true;
}

void Router::OnEvent(const Event& e) {
  ++batch_->events;
  // The input record it came from: records are in line order.
  const uint64_t line = event_line();
  while (record_ + 1 < line_offsets_->size() && (*line_offsets_)[record_ + 1].first <= line) {
    ++record_;
  }
  offset_ = line_offsets_->empty() ? 0 : static_cast<uint64_t>((*line_offsets_)[record_].second);
  Place(e);
  if (e.type == EventType::kJoin && !e.referrer_id.empty() && e.referrer_id != e.user_id) {
    Event credit = e;
    credit.type = EventType::kReferralCredit;
    credit.user_id = e.referrer_id;
    credit.referrer_id = e.user_id;
    Place(credit);
  }
}

void Router::OnReject(uint64_t line, std::string_view reason, std::string_view raw) {
  ++batch_->rejected;
  ++batch_->rejected_by_reason[static_cast<size_t>(ingest::ClassifyReject(reason))];
  if (reject_log_ == nullptr || reject_log_->full()) return;
  // The record the line came from: the last one starting at or before it.
  auto it = std::upper_bound(line_offsets_->begin(), line_offsets_->end(), line,
                             [](uint64_t l, const auto& entry) { return l < entry.first; });
  uint64_t line_in_record = line;
  std::string source = "kafka " + topic_ + "[" + std::to_string(partition_) + "]";
  if (it != line_offsets_->begin()) {
    --it;
    source += " offset " + std::to_string(it->second);
    line_in_record = line - it->first + 1;
  }
  ingest::RejectLog::Format(source, line_in_record, reason, raw, &rejects_);
  ++reject_count_;
  if (rejects_.size() >= 64 * 1024) WriteRejects();
}

void Router::WriteRejects() {
  if (reject_log_ != nullptr && reject_count_ > 0) reject_log_->Write(rejects_, reject_count_);
  rejects_.clear();
  reject_count_ = 0;
}

void Router::Place(const Event& e) {
  const uint32_t p = KafkaPartitionOf(e.user_id, static_cast<uint32_t>(forwards_.size()));
  if (p == partition_) {
    batch_->per_shard[p].push_back(e);
    return;
  }
  std::vector<Forward>& forwards = forwards_[p];
  if (forwards.empty() || (forwards.back().block.size() >= kMaxForwardBytes &&
                           forwards.back().offsets.back() != offset_)) {
    forwards.emplace_back();
    forwards.back().source = partition_;
    state::BeginLogBlock(&forwards.back().block);
  }
  forwards.back().offsets.push_back(offset_);
  state::AppendEventRecord(e, &forwards.back().block);
  ++forwarded_;
}

}  // namespace tierstream::kafka
