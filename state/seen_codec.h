// The seen-blob codec: the persisted form of the event ids a shard accepted
// since its last checkpoint, one blob per arrival day (the store's `seen`
// family keys each by shard, day and a number; Store::Checkpoint::PutSeen).
//
//   version 1 (since wall-clock horizons):
//     0x01 | wall_ms (int64, 8 bytes little-endian) | id hashes
//   version 0 (before): id hashes only
//   id hash: lo (8 bytes LE) | hi (8 bytes LE)
//
// wall_ms is a time no id in the blob was recorded after (its day's newest):
// a restart keeps the ids for the wall-clock horizon past it. A version 0
// blob is told apart by its length (a multiple of 16; version 1 leaves 9).
// These bytes are in existing data dirs: they must not change
// (seen_codec_test.cc pins them).
//
// NewSeenIds is the checkpoint's share of a DedupIndex: an immutable value
// moved out of it (DedupIndex::TakeNewSeen), which another thread may encode.
//
// Thread safety: the functions are pure; NewSeenIds and SeenBlobView are
// const-safe.
#ifndef TIERSTREAM_STATE_SEEN_CODEC_H_
#define TIERSTREAM_STATE_SEEN_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/chunked_vector.h"
#include "common/hash.h"
#include "common/status.h"

namespace tierstream::state {

inline constexpr char kSeenBlobVersion = 1;
inline constexpr size_t kSeenBlobHeaderBytes = 9;
inline constexpr size_t kSeenIdBytes = 16;

// Writing a blob by hand: the header, then each id.
void BeginSeenBlob(int64_t wall_ms, std::string* out);
void AppendSeenId(const Hash128& h, std::string* out);

// A blob read back, borrowing its bytes (which must outlive it).
class SeenBlobView {
 public:
  // Corruption when the length fits neither version.
  static Result<SeenBlobView> Parse(std::string_view blob);

  // The blob's wall-clock time; none for a version 0 blob.
  std::optional<int64_t> wall_ms() const { return wall_ms_; }
  size_t size() const { return ids_.size() / kSeenIdBytes; }
  // REQUIRES: i < size().
  Hash128 id(size_t i) const;

 private:
  SeenBlobView(std::optional<int64_t> wall_ms, std::string_view ids)
      : wall_ms_(wall_ms), ids_(ids) {}
  std::optional<int64_t> wall_ms_;
  std::string_view ids_;
};

struct SeenDayBlob {
  int32_t day = 0;
  std::string blob;
};

// The ids a DedupIndex accepted since its last checkpoint, with what their
// blobs need. Move-only; nothing changes it once made.
class NewSeenIds {
 public:
  using Entry = std::pair<Hash128, int32_t>;  // id hash, arrival day

  NewSeenIds() = default;
  // `ids` in the order they were accepted (an id may come twice, for two
  // days); `day_walls`: (day, wall_ms), the wall-clock time the newest id of
  // each day was recorded (DedupIndex::BucketWalls); a day without one gets
  // `default_wall_ms` (the wall clock when they were taken).
  NewSeenIds(ChunkedVector<Entry> ids, std::vector<std::pair<int32_t, int64_t>> day_walls,
             int64_t default_wall_ms);
  NewSeenIds(NewSeenIds&&) = default;
  NewSeenIds& operator=(NewSeenIds&&) = default;
  NewSeenIds(const NewSeenIds&) = delete;
  NewSeenIds& operator=(const NewSeenIds&) = delete;

  const ChunkedVector<Entry>& ids() const { return ids_; }
  bool empty() const { return ids_.empty(); }
  size_t size() const { return ids_.size(); }
  // One version 1 blob per arrival day, days ascending, each holding its
  // day's ids in the order they were accepted.
  std::vector<SeenDayBlob> EncodeByDay() const;

 private:
  int64_t WallOf(int32_t day) const;

  ChunkedVector<Entry> ids_;
  std::vector<std::pair<int32_t, int64_t>> day_walls_;  // sorted by day
  int64_t default_wall_ms_ = 0;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_SEEN_CODEC_H_
