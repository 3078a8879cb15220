#include "kafka/changelog.h"

#include <algorithm>

#include "common/varint.h"

namespace tierstream::kafka::changelog {

void EncodeClaim(std::string_view instance, std::string* out) {
  out->push_back(static_cast<char>(Kind::kClaim));
  out->append(instance);
}

void EncodeChunk(uint64_t generation, uint64_t checkpoint, std::string_view chunk,
                 std::string* out) {
  out->push_back(static_cast<char>(Kind::kChunk));
  PutVarint64(out, generation);
  PutVarint64(out, checkpoint);
  out->append(chunk);
}

void EncodeMarker(const pipeline::ShardMark& mark, bool base, std::string* out) {
  out->push_back(static_cast<char>(Kind::kMarker));
  PutVarint64(out, mark.generation);
  PutVarint64(out, mark.checkpoint);
  PutVarint64(out, mark.position.events);
  PutVarint64(out, mark.position.repartition);
  out->push_back(base ? 1 : 0);
}

bool Decode(std::string_view value, Record* r) {
  if (value.empty()) return false;
  *r = Record{};
  r->kind = static_cast<Kind>(value[0]);
  value.remove_prefix(1);
  switch (r->kind) {
    case Kind::kClaim:
      r->payload = value;
      return true;
    case Kind::kChunk:
      if (!GetVarint64(&value, &r->generation) || !GetVarint64(&value, &r->mark.checkpoint)) {
        return false;
      }
      r->mark.generation = r->generation;
      r->payload = value;
      return true;
    case Kind::kMarker:
      if (!GetVarint64(&value, &r->mark.generation) || !GetVarint64(&value, &r->mark.checkpoint) ||
          !GetVarint64(&value, &r->mark.position.events) ||
          !GetVarint64(&value, &r->mark.position.repartition) || value.size() != 1) {
        return false;
      }
      r->generation = r->mark.generation;
      r->base = value[0] == 1;
      return true;
  }
  return false;
}

void RestorePlan::Add(int64_t offset, const Record& r) {
  if (r.kind == Kind::kClaim) {
    claim_ = offset;
    based_ = false;
    pending_.clear();
    return;
  }
  // Written under an older claim (or before any): fenced.
  if (claim_ < 0 || r.generation != GenerationOf(claim_)) return;
  if (r.kind == Kind::kChunk) {
    pending_.push_back(offset);
    return;
  }
  if (r.base) {
    based_ = true;
    chain_.clear();
  } else if (!based_) {
    pending_.clear();  // an increment over nothing this lineage wrote
    return;
  }
  chain_.insert(chain_.end(), pending_.begin(), pending_.end());
  pending_.clear();
  newest_ = r.mark;
}

bool RestorePlan::Applies(int64_t offset) const {
  return std::binary_search(chain_.begin(), chain_.end(), offset);
}

}  // namespace tierstream::kafka::changelog
