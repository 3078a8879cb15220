// libFuzzer target: the spilled id runs a restart reads back, on arbitrary
// input. The input is decoded as an IdRun descriptor (filter and fences),
// loaded into a DedupIndex whose every block read returns the input itself,
// so that lookups go through the filter, the fences and FindInBlock on the
// same bytes; and it is read as a block of (hash, day) entries. Whatever
// decodes must re-encode to bytes that decode to the same value, and a run
// built from the input's entries must find every one of them.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "common/status.h"
#include "state/dedup_index.h"
#include "state/id_run.h"

namespace {

using tierstream::Hash128;
using tierstream::Status;
using tierstream::state::DedupIndex;
using tierstream::state::IdRun;
using tierstream::state::IdRunSource;
using tierstream::state::kIdRunEntryBytes;

// Every block of every run is the fuzzer's input.
class InputBlocks : public IdRunSource {
 public:
  explicit InputBlocks(std::string_view bytes) : bytes_(bytes) {}
  Status ReadIdBlock(uint64_t /*run_no*/, uint32_t /*block*/, std::string* bytes) override {
    bytes->assign(bytes_);
    return Status::Ok();
  }

 private:
  std::string_view bytes_;
};

Hash128 HashAt(std::string_view in, size_t pos) {
  Hash128 h;
  std::memcpy(&h.lo, in.data() + pos, 8);
  std::memcpy(&h.hi, in.data() + pos + 8, 8);
  return h;
}

int32_t DayAt(std::string_view in, size_t pos) {
  int32_t day;
  std::memcpy(&day, in.data() + pos, 4);
  return day;
}

void CheckDescriptor(std::string_view in) {
  IdRun run;
  if (!IdRun::DecodeDescriptor(in, &run).ok()) return;
  // Varints may be padded and a version 1 descriptor comes back as version
  // 2: compare from the first re-encoding on.
  std::string again;
  run.EncodeDescriptor(&again);
  IdRun copy;
  if (!IdRun::DecodeDescriptor(again, &copy).ok()) std::abort();
  std::string third;
  copy.EncodeDescriptor(&third);
  if (third != again || copy.count() != run.count() || copy.max_day() != run.max_day()) {
    std::abort();
  }
  for (size_t pos = 0; pos + 16 <= in.size() && pos < 64 * 16; pos += 16) {
    const Hash128 h = HashAt(in, pos);
    if (run.MayContain(h) != copy.MayContain(h) || run.BlockOf(h) != copy.BlockOf(h)) std::abort();
  }
}

void CheckIndexLookups(std::string_view in) {
  InputBlocks blocks(in);
  DedupIndex index(0, 8 /*horizon days*/, &blocks);
  index.SetWallClock(1'700'000'000'000);
  if (!index.LoadIdRun(in).ok()) return;
  if (index.id_runs() != 1) std::abort();
  // Hashes the input holds, wherever the filter sends them.
  for (size_t pos = 0; pos + 16 <= in.size() && pos < 64 * 16; pos += 16) {
    (void)index.MarkSeenHash(HashAt(in, pos), 1'700'000'000'000, 19'675, 1'700'000'000'000);
    (void)index.TakeIdError();
  }
  (void)index.Expire(19'700, SIZE_MAX);
}

void CheckBlock(std::string_view in) {
  if (in.size() % kIdRunEntryBytes != 0) {
    bool found = true;
    int32_t day;
    if (IdRun::FindInBlock(in, Hash128{1, 2}, &found, &day).ok() || found) std::abort();
    return;
  }
  // A block as Build writes it (sorted, distinct hashes) finds each entry
  // with its day; any other one answers without crashing.
  const size_t n = std::min<size_t>(in.size() / kIdRunEntryBytes, 512);
  bool sorted = true;
  for (size_t i = 1; i < in.size() / kIdRunEntryBytes; ++i) {
    sorted &= tierstream::state::HashLess(HashAt(in, (i - 1) * kIdRunEntryBytes),
                                          HashAt(in, i * kIdRunEntryBytes));
  }
  for (size_t i = 0; i < n; ++i) {
    bool found = false;
    int32_t day = 0;
    if (!IdRun::FindInBlock(in, HashAt(in, i * kIdRunEntryBytes), &found, &day).ok()) std::abort();
    if (sorted && (!found || day != DayAt(in, i * kIdRunEntryBytes + 16))) std::abort();
  }
}

// A run built from the input's entries finds every one of them, through its
// descriptor decoded again.
void CheckBuild(std::string_view in) {
  std::vector<std::pair<Hash128, int32_t>> entries;
  for (size_t pos = 0; pos + kIdRunEntryBytes <= in.size(); pos += kIdRunEntryBytes) {
    entries.emplace_back(HashAt(in, pos), DayAt(in, pos + 16));
  }
  if (entries.empty()) return;
  const auto original = entries;
  std::map<uint32_t, std::string> blocks;
  IdRun built = IdRun::Build(1, &entries, [&](uint32_t block, std::string_view bytes) {
    blocks[block] = std::string(bytes);
  });
  std::string descriptor;
  built.EncodeDescriptor(&descriptor);
  IdRun run;
  if (!IdRun::DecodeDescriptor(descriptor, &run).ok() || run.count() != original.size()) {
    std::abort();
  }
  for (const auto& [h, want] : original) {
    if (!run.MayContain(h)) std::abort();
    auto block = blocks.find(run.BlockOf(h));
    bool found = false;
    int32_t day = 0;
    if (block == blocks.end() || !IdRun::FindInBlock(block->second, h, &found, &day).ok() ||
        !found) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckDescriptor(in);
  CheckIndexLookups(in);
  CheckBlock(in);
  CheckBuild(in);
  return 0;
}
