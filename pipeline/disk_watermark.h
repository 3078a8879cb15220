// DiskWatermark: whether the file system of a directory has less free space
// than a bound, sampled at most every 50 ms so that asking is cheap enough
// for every submitted batch. Ingest is refused while it is low: RocksDB must
// never meet a full disk. Logs (WARNING / INFO) when the state changes.
//
// Thread safety: thread-safe (Low() is const and lock-free; concurrent
// callers may sample twice, which is harmless).
#ifndef TIERSTREAM_PIPELINE_DISK_WATERMARK_H_
#define TIERSTREAM_PIPELINE_DISK_WATERMARK_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace tierstream::pipeline {

class DiskWatermark {
 public:
  DiskWatermark(std::string dir, uint64_t min_free_bytes)
      : dir_(std::move(dir)), min_free_bytes_(min_free_bytes) {}

  // True while free space is under the bound (as of the last sample).
  bool Low() const {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    if (now - checked_ms_.load(std::memory_order_relaxed) >= kSampleMs) Sample(now);
    return low_.load(std::memory_order_relaxed);
  }
  // Free bytes (for an unprivileged user) as of the last sample, sampling
  // again if it is stale; 0 before a sample succeeded.
  uint64_t FreeBytes() const {
    (void)Low();
    return free_bytes_.load(std::memory_order_relaxed);
  }
  uint64_t min_free_bytes() const { return min_free_bytes_; }

 private:
  static constexpr int64_t kSampleMs = 50;
  void Sample(int64_t now_ms) const;

  const std::string dir_;
  const uint64_t min_free_bytes_;
  mutable std::atomic<int64_t> checked_ms_{INT64_MIN / 2};
  mutable std::atomic<bool> low_{false};
  mutable std::atomic<uint64_t> free_bytes_{0};
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_DISK_WATERMARK_H_
