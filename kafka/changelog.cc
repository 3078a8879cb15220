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

void EncodeChanges(uint64_t generation, uint64_t checkpoint,
                   const std::vector<std::string>& changes, size_t begin, size_t end,
                   std::string* out) {
  out->push_back(static_cast<char>(Kind::kChanges));
  PutVarint64(out, generation);
  PutVarint64(out, checkpoint);
  PutVarint64(out, end - begin);
  for (size_t i = begin; i < end; ++i) {
    PutVarint64(out, changes[i].size());
    out->append(changes[i]);
  }
}

void EncodePublished(uint64_t generation, uint64_t checkpoint, std::string* out) {
  out->push_back(static_cast<char>(Kind::kPublished));
  PutVarint64(out, generation);
  PutVarint64(out, checkpoint);
}

bool DecodeChanges(std::string_view payload, std::vector<std::string_view>* changes) {
  changes->clear();
  uint64_t count = 0;
  if (!GetVarint64(&payload, &count) || count > payload.size()) return false;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t size = 0;
    if (!GetVarint64(&payload, &size) || size > payload.size()) return false;
    changes->push_back(payload.substr(0, size));
    payload.remove_prefix(size);
  }
  return payload.empty();
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
    case Kind::kChanges:
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
    case Kind::kPublished:
      if (!GetVarint64(&value, &r->generation) || !GetVarint64(&value, &r->mark.checkpoint) ||
          !value.empty()) {
        return false;
      }
      r->mark.generation = r->generation;
      return true;
  }
  return false;
}

void RestorePlan::Add(int64_t offset, const Record& r) {
  if (r.kind == Kind::kClaim) {
    claim_ = offset;
    based_ = false;
    pending_.clear();
    pending_changes_.clear();
    return;
  }
  // Written under an older claim (or before any): fenced.
  if (claim_ < 0 || r.generation != GenerationOf(claim_)) return;
  switch (r.kind) {
    case Kind::kChunk:
      pending_.push_back(offset);
      return;
    case Kind::kChanges:
      pending_changes_.push_back({r.generation, r.mark.checkpoint, std::string(r.payload)});
      return;
    case Kind::kPublished:
      std::erase_if(unpublished_, [&](const Unpublished& u) {
        return u.generation == r.generation && u.checkpoint <= r.mark.checkpoint;
      });
      return;
    default:
      break;
  }
  if (r.base) {
    based_ = true;
    chain_.clear();
    // Its writer produced what was unpublished before it wrote it.
    unpublished_.clear();
  } else if (!based_) {
    pending_.clear();  // an increment over nothing this lineage wrote
    pending_changes_.clear();
    return;
  }
  chain_.insert(chain_.end(), pending_.begin(), pending_.end());
  pending_.clear();
  for (Unpublished& u : pending_changes_) {
    if (u.checkpoint == r.mark.checkpoint) unpublished_.push_back(std::move(u));
  }
  pending_changes_.clear();
  newest_ = r.mark;
}

bool RestorePlan::Applies(int64_t offset) const {
  return std::binary_search(chain_.begin(), chain_.end(), offset);
}

}  // namespace tierstream::kafka::changelog
