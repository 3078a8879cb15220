// The changelog (PREFIX-changelog, one partition per input partition, as
// Kafka Streams keeps one per store): what a shard's state is, so that
// another instance can take it over.
//
// Records of partition p, in order:
//   claim   an instance takes p over. Its generation is its own offset
//           plus one: unique, and later claims have larger ones.
//   chunk   part of a checkpoint's shard image (state::Store::ExportImage),
//           written under the writer's generation
//   marker  ends a checkpoint: its number, the input position it covers,
//           and whether it is a base (the whole shard, written right after
//           a claim) or an increment over the one before.
// A record counts only if its generation is that of the latest claim before
// it: a paused owner that wakes up after another took over (a zombie) writes
// records nobody applies. A lineage's increments count only after its base,
// so a restore applies the newest base and the increments after it.
//
// Thread safety: plain functions and a confined RestorePlan.
#ifndef TIERSTREAM_KAFKA_CHANGELOG_H_
#define TIERSTREAM_KAFKA_CHANGELOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/pipeline.h"

namespace tierstream::kafka::changelog {

enum class Kind : char { kClaim = 'C', kChunk = 'I', kMarker = 'M' };

// The owner generation of a claim at `offset` (0 is no generation: a shard
// never claimed).
inline uint64_t GenerationOf(int64_t offset) { return static_cast<uint64_t>(offset) + 1; }

struct Record {
  Kind kind = Kind::kClaim;
  uint64_t generation = 0;   // the writer's (chunk, marker)
  pipeline::ShardMark mark;  // marker: its checkpoint; chunk: mark.checkpoint only
  bool base = false;         // marker
  std::string_view payload;  // claim: the instance; chunk: the image chunk
};

void EncodeClaim(std::string_view instance, std::string* out);
void EncodeChunk(uint64_t generation, uint64_t checkpoint, std::string_view chunk,
                 std::string* out);
void EncodeMarker(const pipeline::ShardMark& mark, bool base, std::string* out);
// False if `value` is not a changelog record.
bool Decode(std::string_view value, Record* r);

// What a new owner restores: fed a partition's records in offset order (up
// to its own claim), it finds the newest checkpoint that counts and the
// chunks that rebuild it (its lineage's base and the increments since).
class RestorePlan {
 public:
  void Add(int64_t offset, const Record& r);
  // The newest checkpoint that counts; none: the partition has no state.
  const std::optional<pipeline::ShardMark>& newest() const { return newest_; }
  // The first offset to read to rebuild it (-1: none).
  int64_t first_offset() const { return chain_.empty() ? -1 : chain_.front(); }
  // Whether the record at `offset` is a chunk to apply (in offset order).
  bool Applies(int64_t offset) const;
  size_t chunks() const { return chain_.size(); }

 private:
  int64_t claim_ = -1;            // the latest claim's offset
  bool based_ = false;            // its lineage wrote a base
  std::vector<int64_t> pending_;  // chunks since its last marker
  std::vector<int64_t> chain_;    // chunks of the newest base and after
  std::optional<pipeline::ShardMark> newest_;
};

}  // namespace tierstream::kafka::changelog

#endif  // TIERSTREAM_KAFKA_CHANGELOG_H_
