// IdRun: a sorted run of event-id hashes spilled out of the in-memory
// duplicate index, so that the index's memory stays bounded however many
// ids fall inside the horizon.
//
// A run is immutable. Its entries (hash, day) are sorted by hash and cut into
// blocks of kIdRunBlockEntries that live in the store; in memory it keeps
// only a blocked Bloom filter (~12 bits per id) and the first hash of each
// block (~0.1 byte per id). A lookup that passes the filter reads one block.
//
// Thread safety: confined (owned by one shard).
#ifndef TIERSTREAM_STATE_ID_RUN_H_
#define TIERSTREAM_STATE_ID_RUN_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "common/status.h"

namespace tierstream::state {

inline constexpr size_t kIdRunBlockEntries = 256;
inline constexpr size_t kIdRunEntryBytes = 20;  // lo(8) hi(8) day(4), little-endian

// Total order of hashes within runs.
inline bool HashLess(const Hash128& a, const Hash128& b) {
  return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo;
}

class IdRun {
 public:
  IdRun() = default;

  // Builds a run from `entries` (sorted here) and calls put_block(block_no,
  // bytes) for each of its blocks.
  template <typename Fn>
  static IdRun Build(uint64_t run_no, std::vector<std::pair<Hash128, int32_t>>* entries,
                     Fn&& put_block);

  uint64_t run_no() const { return run_no_; }
  int32_t max_day() const { return max_day_; }
  // The wall-clock time (ms) its newest id was accepted, at the latest: the
  // run is remembered for the horizon past it too (0: unknown, written
  // before runs recorded it).
  int64_t max_wall_ms() const { return max_wall_ms_; }
  void set_max_wall_ms(int64_t ms) { max_wall_ms_ = ms; }
  uint64_t count() const { return count_; }
  size_t MemoryBytes() const { return bloom_.capacity() * 8 + fences_.capacity() * 16; }

  bool MayContain(const Hash128& h) const;
  // A hint that MayContain(h) comes soon: fetches its filter block.
  void Prefetch(const Hash128& h) const;
  // The block that holds `h` if any does (REQUIRES: count() > 0).
  uint32_t BlockOf(const Hash128& h) const;
  // Looks `h` up in a block read back from the store.
  static Status FindInBlock(std::string_view block, const Hash128& h, bool* found, int32_t* day);

  // The in-memory part, persisted beside the blocks.
  void EncodeDescriptor(std::string* out) const;
  static Status DecodeDescriptor(std::string_view in, IdRun* out);

 private:
  void AddToBloom(const Hash128& h);
  void StartBlock(const Hash128& first) { fences_.push_back(first); }
  static void AppendEntry(std::string* out, const Hash128& h, int32_t day);

  uint64_t run_no_ = 0;
  int32_t max_day_ = INT32_MIN;
  int64_t max_wall_ms_ = 0;
  uint64_t count_ = 0;
  std::vector<uint64_t> bloom_;  // blocks of 8 words (512 bits)
  std::vector<Hash128> fences_;  // first hash of each block
};

template <typename Fn>
IdRun IdRun::Build(uint64_t run_no, std::vector<std::pair<Hash128, int32_t>>* entries,
                   Fn&& put_block) {
  std::sort(entries->begin(), entries->end(),
            [](const auto& a, const auto& b) { return HashLess(a.first, b.first); });
  IdRun run;
  run.run_no_ = run_no;
  run.count_ = entries->size();
  // 12 bits per id: about 0.5% false positives with 8 probes in 512-bit blocks.
  const size_t bloom_blocks = std::max<size_t>(1, (entries->size() * 12 + 511) / 512);
  run.bloom_.assign(bloom_blocks * 8, 0);
  std::string block;
  uint32_t block_no = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto& [h, day] = (*entries)[i];
    if (i % kIdRunBlockEntries == 0) run.StartBlock(h);
    run.AddToBloom(h);
    run.max_day_ = std::max(run.max_day_, day);
    AppendEntry(&block, h, day);
    if (block.size() == kIdRunBlockEntries * kIdRunEntryBytes || i + 1 == entries->size()) {
      put_block(block_no++, std::string_view(block));
      block.clear();
    }
  }
  return run;
}

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_ID_RUN_H_
