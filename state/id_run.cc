// Builds, encodes and searches spilled id runs: sorted blocks of event-id
// hashes behind a blocked Bloom filter and block fences.
#include "state/id_run.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "common/varint.h"

namespace tierstream::state {

namespace {

// The filter block of `h`: its low word scaled onto [0, blocks).
size_t BloomBlock(const Hash128& h, size_t blocks) {
  return static_cast<size_t>((static_cast<unsigned __int128>(h.lo) * blocks) >> 64);
}

// Eight 9-bit positions taken from the high word, rotated between probes.
template <typename Fn>
void ForEachProbe(const Hash128& h, Fn&& fn) {
  uint64_t x = h.hi;
  for (int i = 0; i < 8; ++i) {
    fn(static_cast<unsigned>(x & 511));
    x = (x >> 9) | (x << 55);
  }
}

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

void IdRun::AddToBloom(const Hash128& h) {
  uint64_t* words = &bloom_[BloomBlock(h, bloom_.size() / 8) * 8];
  ForEachProbe(h, [&](unsigned bit) { words[bit >> 6] |= uint64_t{1} << (bit & 63); });
}

bool IdRun::MayContain(const Hash128& h) const {
  if (bloom_.empty()) return false;
  const uint64_t* words = &bloom_[BloomBlock(h, bloom_.size() / 8) * 8];
  bool all = true;
  ForEachProbe(h, [&](unsigned bit) { all &= (words[bit >> 6] >> (bit & 63)) & 1; });
  return all;
}

void IdRun::Prefetch(const Hash128& h) const {
  if (!bloom_.empty()) __builtin_prefetch(&bloom_[BloomBlock(h, bloom_.size() / 8) * 8]);
}

uint32_t IdRun::BlockOf(const Hash128& h) const {
  // The last block whose first hash is <= h.
  auto it = std::upper_bound(fences_.begin(), fences_.end(), h,
                             [](const Hash128& a, const Hash128& b) { return HashLess(a, b); });
  return it == fences_.begin() ? 0 : static_cast<uint32_t>(it - fences_.begin() - 1);
}

void IdRun::AppendEntry(std::string* out, const Hash128& h, int32_t day) {
  out->append(reinterpret_cast<const char*>(&h.lo), 8);
  out->append(reinterpret_cast<const char*>(&h.hi), 8);
  out->append(reinterpret_cast<const char*>(&day), 4);
}

Status IdRun::FindInBlock(std::string_view block, const Hash128& h, bool* found, int32_t* day) {
  *found = false;
  if (block.size() % kIdRunEntryBytes != 0) return Status::Corruption("id run block: bad length");
  size_t lo = 0, hi = block.size() / kIdRunEntryBytes;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    const char* p = block.data() + mid * kIdRunEntryBytes;
    const Hash128 m{Load64(p), Load64(p + 8)};
    if (m == h) {
      *found = true;
      std::memcpy(day, p + 16, 4);
      return Status::Ok();
    }
    if (HashLess(m, h)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return Status::Ok();
}

void IdRun::EncodeDescriptor(std::string* out) const {
  PutVarint64(out, 2);  // format version (1: without max_wall_ms)
  PutVarint64(out, run_no_);
  PutVarintSigned(out, max_day_);
  PutVarintSigned(out, max_wall_ms_);
  PutVarint64(out, count_);
  PutVarint64(out, bloom_.size());
  out->append(reinterpret_cast<const char*>(bloom_.data()), bloom_.size() * 8);
  PutVarint64(out, fences_.size());
  for (const Hash128& f : fences_) {
    out->append(reinterpret_cast<const char*>(&f.lo), 8);
    out->append(reinterpret_cast<const char*>(&f.hi), 8);
  }
}

Status IdRun::DecodeDescriptor(std::string_view in, IdRun* out) {
  auto bad = [](const char* what) {
    return Status::Corruption(std::string("id run descriptor: ") + what);
  };
  uint64_t version, run_no, count, words, fences;
  int64_t max_day, max_wall_ms = 0;
  if (!GetVarint64(&in, &version) || (version != 1 && version != 2)) {
    return bad("unknown version");
  }
  if (!GetVarint64(&in, &run_no) || !GetVarintSigned(&in, &max_day) ||
      (version >= 2 && !GetVarintSigned(&in, &max_wall_ms)) || !GetVarint64(&in, &count) ||
      !GetVarint64(&in, &words)) {
    return bad("truncated header");
  }
  // Runs are numbered from 1; the last number has no successor (the key
  // range of its blocks ends at run + 1).
  if (run_no == 0 || run_no == UINT64_MAX) return bad("bad run number");
  if (max_day < INT32_MIN || max_day > INT32_MAX) return bad("max day out of range");
  // Sizes are compared by division: a hostile count times the entry size
  // wraps around 2^64 (and would pass a multiplied check).
  if (words % 8 != 0 || words > in.size() / 8) return bad("bad filter size");
  const std::string_view bloom = in.substr(0, words * 8);
  in.remove_prefix(words * 8);
  if (!GetVarint64(&in, &fences) || in.size() % 16 != 0 || fences != in.size() / 16) {
    return bad("bad fences");
  }
  // What Build makes of `count` ids (both unchanged since runs exist): one
  // fence per block, and the filter's size. Checked so that the count, which
  // the index sums, cannot disagree with what the run holds.
  if (fences != count / kIdRunBlockEntries + (count % kIdRunBlockEntries != 0 ? 1 : 0)) {
    return bad("fences do not match the id count");
  }
  if (words != std::max<uint64_t>(1, (count * 12 + 511) / 512) * 8) {
    return bad("filter size does not match the id count");
  }
  if (count == 0 && max_day != INT32_MIN) return bad("max day without ids");
  IdRun run;
  run.run_no_ = run_no;
  run.max_day_ = static_cast<int32_t>(max_day);
  run.max_wall_ms_ = max_wall_ms;
  run.count_ = count;
  run.bloom_.resize(words);  // at least 8: checked against the count above
  std::memcpy(run.bloom_.data(), bloom.data(), bloom.size());
  run.fences_.resize(fences);
  for (size_t i = 0; i < fences; ++i) {
    run.fences_[i] = Hash128{Load64(in.data() + i * 16), Load64(in.data() + i * 16 + 8)};
    if (i > 0 && HashLess(run.fences_[i], run.fences_[i - 1])) return bad("fences out of order");
  }
  *out = std::move(run);
  return Status::Ok();
}

}  // namespace tierstream::state
