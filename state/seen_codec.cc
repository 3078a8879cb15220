// The seen-blob codec: writing and reading the blobs of new ids (its format
// is in the header), and grouping a checkpoint's new ids into them by day.
#include "state/seen_codec.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace tierstream::state {

namespace {

void AppendLe64(uint64_t v, std::string* out) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (8 * i));
  out->append(bytes, 8);
}

uint64_t LoadLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void BeginSeenBlob(int64_t wall_ms, std::string* out) {
  out->push_back(kSeenBlobVersion);
  AppendLe64(static_cast<uint64_t>(wall_ms), out);
}

void AppendSeenId(const Hash128& h, std::string* out) {
  AppendLe64(h.lo, out);
  AppendLe64(h.hi, out);
}

Result<SeenBlobView> SeenBlobView::Parse(std::string_view blob) {
  std::optional<int64_t> wall_ms;
  if (blob.size() % kSeenIdBytes == kSeenBlobHeaderBytes && blob[0] == kSeenBlobVersion) {
    wall_ms = static_cast<int64_t>(LoadLe64(blob.data() + 1));
    blob.remove_prefix(kSeenBlobHeaderBytes);
  }
  if (blob.size() % kSeenIdBytes != 0) return Status::Corruption("seen ids: bad length");
  return SeenBlobView(wall_ms, blob);
}

Hash128 SeenBlobView::id(size_t i) const {
  const char* p = ids_.data() + i * kSeenIdBytes;
  return Hash128{LoadLe64(p), LoadLe64(p + 8)};
}

NewSeenIds::NewSeenIds(ChunkedVector<Entry> ids, std::vector<std::pair<int32_t, int64_t>> day_walls,
                       int64_t default_wall_ms)
    : ids_(std::move(ids)), day_walls_(std::move(day_walls)), default_wall_ms_(default_wall_ms) {
  std::sort(day_walls_.begin(), day_walls_.end());
}

int64_t NewSeenIds::WallOf(int32_t day) const {
  auto it = std::lower_bound(day_walls_.begin(), day_walls_.end(), day,
                             [](const auto& dw, int32_t d) { return dw.first < d; });
  return it != day_walls_.end() && it->first == day ? it->second : default_wall_ms_;
}

std::vector<SeenDayBlob> NewSeenIds::EncodeByDay() const {
  std::vector<SeenDayBlob> blobs;
  std::vector<size_t> counts;
  absl::flat_hash_map<int32_t, size_t> slot_of_day;
  // Most ids of a checkpoint share one day: the last one is remembered.
  int32_t last_day = 0;
  size_t last_slot = SIZE_MAX;
  auto slot = [&](int32_t day) {
    if (last_slot == SIZE_MAX || day != last_day) {
      auto [it, fresh] = slot_of_day.try_emplace(day, blobs.size());
      if (fresh) {
        blobs.push_back(SeenDayBlob{day, {}});
        counts.push_back(0);
      }
      last_day = day;
      last_slot = it->second;
    }
    return last_slot;
  };
  for (const auto& [h, day] : ids_) ++counts[slot(day)];
  for (size_t i = 0; i < blobs.size(); ++i) {
    blobs[i].blob.reserve(kSeenBlobHeaderBytes + counts[i] * kSeenIdBytes);
    BeginSeenBlob(WallOf(blobs[i].day), &blobs[i].blob);
  }
  for (const auto& [h, day] : ids_) AppendSeenId(h, &blobs[slot(day)].blob);
  std::sort(blobs.begin(), blobs.end(),
            [](const SeenDayBlob& a, const SeenDayBlob& b) { return a.day < b.day; });
  return blobs;
}

}  // namespace tierstream::state
