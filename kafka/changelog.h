// The changelog (PREFIX-changelog, one partition per input partition, as
// Kafka Streams keeps one per store): what a shard's state is, so that
// another instance can take it over.
//
// Records of partition p, in order:
//   claim   an instance takes p over. Its generation is its own offset
//           plus one: unique, and later claims have larger ones.
//   chunk   part of a checkpoint's shard image (state::Store::ExportImage),
//           written under the writer's generation
//   changes the tier changes the checkpoint covers (made since the one
//           before), under the writer's generation; written before its
//           marker
//   marker  ends a checkpoint: its number, the input position it covers,
//           and whether it is a base (the whole shard, written right after
//           a claim) or an increment over the one before.
//   published  the writer produced the changes of its checkpoints up to
//           this one to PREFIX-changes (kafka/change_publisher.h).
// A record counts only if its generation is that of the latest claim before
// it: a paused owner that wakes up after another took over (a zombie) writes
// records nobody applies. A lineage's increments count only after its base,
// so a restore applies the newest base and the increments after it.
//
// Tier changes reach PREFIX-changes only from checkpoints that count, after
// their marker, and a new owner produces again those of the checkpoints it
// restores that no published record covers (before its base): so a change
// (user_id, seq) is published only as the state it came from is restored,
// and whoever continues from that state numbers her next change seq + 1.
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

enum class Kind : char {
  kClaim = 'C',
  kChunk = 'I',
  kChanges = 'X',
  kMarker = 'M',
  kPublished = 'P'
};

// The owner generation of a claim at `offset` (0 is no generation: a shard
// never claimed).
inline uint64_t GenerationOf(int64_t offset) { return static_cast<uint64_t>(offset) + 1; }

struct Record {
  Kind kind = Kind::kClaim;
  uint64_t generation = 0;  // the writer's (chunk, marker)
  // marker: its checkpoint; chunk, changes, published: mark.checkpoint only
  pipeline::ShardMark mark;
  bool base = false;         // marker
  std::string_view payload;  // claim: the instance; chunk: the image chunk; changes: them
};

void EncodeClaim(std::string_view instance, std::string* out);
void EncodeChunk(uint64_t generation, uint64_t checkpoint, std::string_view chunk,
                 std::string* out);
// Changes [begin, end) of `changes` (encoded state::TierChange).
void EncodeChanges(uint64_t generation, uint64_t checkpoint,
                   const std::vector<std::string>& changes, size_t begin, size_t end,
                   std::string* out);
void EncodeMarker(const pipeline::ShardMark& mark, bool base, std::string* out);
void EncodePublished(uint64_t generation, uint64_t checkpoint, std::string* out);
// The encoded changes of a changes record's payload; false if it does not
// decode.
bool DecodeChanges(std::string_view payload, std::vector<std::string_view>* changes);
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

  // Changes records of checkpoints that count and that no published record
  // covers, in order: the new owner produces them (again) before its base.
  struct Unpublished {
    uint64_t generation = 0;
    uint64_t checkpoint = 0;
    std::string payload;  // as changes records carry it
  };
  const std::vector<Unpublished>& unpublished() const { return unpublished_; }

 private:
  int64_t claim_ = -1;                        // the latest claim's offset
  bool based_ = false;                        // its lineage wrote a base
  std::vector<int64_t> pending_;              // chunks since its last marker
  std::vector<int64_t> chain_;                // chunks of the newest base and after
  std::vector<Unpublished> pending_changes_;  // changes records since its last marker
  std::vector<Unpublished> unpublished_;
  std::optional<pipeline::ShardMark> newest_;
};

}  // namespace tierstream::kafka::changelog

#endif  // TIERSTREAM_KAFKA_CHANGELOG_H_
