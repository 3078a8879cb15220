// libFuzzer target: the seen blobs a restart loads into a shard's duplicate
// index (DedupIndex::LoadSeen), on arbitrary input: the first 4 bytes are
// the day of the blob's key (little-endian), the rest is the blob. Whatever
// loads must hold every id it carried as a duplicate, load again for a
// later day, and expire without crashing; the codec must read it as the
// index did, and re-encode it to the same bytes (a bare blob gains a header).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "state/dedup_index.h"
#include "state/seen_codec.h"
#include "state/shard_aggregates.h"

namespace {

using tierstream::Hash128;
using tierstream::state::DedupIndex;
using tierstream::state::NewSeenIds;
using tierstream::state::SeenBlobView;

constexpr int64_t kWallMs = 1'700'000'000'000;
constexpr int64_t kMsPerDay = 86'400'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  int32_t day;
  std::memcpy(&day, data, 4);
  const std::string_view blob(reinterpret_cast<const char*>(data) + 4, size - 4);

  DedupIndex index(0, 8 /*horizon days*/, nullptr);
  index.SetWallClock(kWallMs);
  auto view = SeenBlobView::Parse(blob);
  if (!index.LoadSeen(day, blob).ok()) {
    // Only its day may be wrong.
    if (view.ok() && day >= tierstream::state::kFirstCellDay &&
        day <= tierstream::state::kLastCellDay) {
      std::abort();
    }
    return 0;
  }
  if (!view.ok()) std::abort();
  // Its ids, encoded again as a checkpoint writes them.
  tierstream::ChunkedVector<NewSeenIds::Entry> ids;
  for (size_t i = 0; i < view->size(); ++i) ids.emplace_back(view->id(i), day);
  NewSeenIds again(std::move(ids), {{day, view->wall_ms().value_or(kWallMs)}}, 0);
  const auto blobs = again.EncodeByDay();
  if (view->size() == 0 ? !blobs.empty()
                        : blobs.size() != 1 || blobs[0].day != day ||
                              blobs[0].blob.size() != 9 + view->size() * 16 ||
                              std::string_view(blobs[0].blob).substr(9) !=
                                  blob.substr(blob.size() - view->size() * 16) ||
                              (view->wall_ms().has_value() && blobs[0].blob != blob)) {
    std::abort();
  }
  // The ids sit after the header (if any) at 16 bytes each.
  const size_t ids_at = blob.size() % 16;
  if (index.count() > (blob.size() - ids_at) / 16) std::abort();
  const int64_t ts = int64_t{day} * kMsPerDay;
  for (size_t pos = ids_at; pos + 16 <= blob.size() && pos < ids_at + 64 * 16; pos += 16) {
    Hash128 h;
    std::memcpy(&h.lo, blob.data() + pos, 8);
    std::memcpy(&h.hi, blob.data() + pos + 8, 8);
    if (index.MarkSeenHash(h, ts, day, ts)) std::abort();  // loaded: a duplicate
  }
  // The same ids from a later day's blob (re-seen after they expired).
  if (day < INT32_MAX && index.LoadSeen(day + 1, blob).ok()) {
    if (index.count() > (blob.size() - ids_at) / 16) std::abort();
  }
  // Expiry in slices, by event time and then by the wall clock too.
  for (int i = 0; i < 1000 && !index.Expire(day + 30, 64); ++i) {
  }
  index.SetWallClock(INT64_MAX / 2);
  for (int i = 0; i < 1000 && !index.Expire(day + 30, 64); ++i) {
  }
  if (!index.Expire(day + 30, SIZE_MAX)) std::abort();
  return 0;
}
