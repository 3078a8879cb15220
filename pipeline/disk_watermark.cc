// Samples the free space of the data dir's file system (statvfs).
#include "pipeline/disk_watermark.h"

#include <sys/statvfs.h>

#include "common/log.h"

namespace tierstream::pipeline {

void DiskWatermark::Sample(int64_t now_ms) const {
  checked_ms_.store(now_ms, std::memory_order_relaxed);
  struct statvfs fs;
  // A failed statvfs keeps the last answer: better than refusing ingest on
  // a transient error, or taking it on a full disk.
  if (::statvfs(dir_.c_str(), &fs) != 0) return;
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  free_bytes_.store(free_bytes, std::memory_order_relaxed);
  const bool low = free_bytes < min_free_bytes_;
  if (low != low_.load()) {
    Log(low ? LogLevel::kWarning : LogLevel::kInfo, "tierstream: %s: %llu bytes free; ingest %s",
        dir_.c_str(), static_cast<unsigned long long>(free_bytes),
        low ? "refused until space returns" : "resumes");
  }
  low_.store(low, std::memory_order_relaxed);
}

}  // namespace tierstream::pipeline
