// RejectLog: appends each rejected line, with its reason, to
// DATA/rejected.ndjson as {"at_ms":..,"source":..,"line":..,"error":..,"raw":..}.
//
// Bounded: once the file would exceed `max_bytes` further rejections are
// only counted, so hostile input cannot fill the disk. Records are written
// in runs (Format, then Write: one write and one flush per run, not per
// line: a body of a million bad lines made a million write calls).
// Thread-safe (one mutex; rejections are off the hot path).
#ifndef TIERSTREAM_INGEST_REJECT_LOG_H_
#define TIERSTREAM_INGEST_REJECT_LOG_H_

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace tierstream::ingest {

class RejectLog {
 public:
  // An empty path disables the log.
  RejectLog(const std::string& path, uint64_t max_bytes);
  ~RejectLog();
  RejectLog(const RejectLog&) = delete;
  RejectLog& operator=(const RejectLog&) = delete;

  // Appends one record to `records` (for Write).
  static void Format(std::string_view source, uint64_t line, std::string_view reason,
                     std::string_view raw, std::string* records);
  // Writes `count` records made by Format, whole or not at all (empty
  // `records`: `count` records only counted as dropped).
  void Write(std::string_view records, uint64_t count) ABSL_LOCKS_EXCLUDED(mu_);
  // Format and Write of one record.
  void Append(std::string_view source, uint64_t line, std::string_view reason,
              std::string_view raw);
  uint64_t dropped() const ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the file has no room left (records then are only counted: a
  // caller may skip formatting them).
  bool full() const { return full_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> full_{false};
  mutable absl::Mutex mu_;
  std::FILE* file_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  const uint64_t max_bytes_;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tierstream::ingest

#endif  // TIERSTREAM_INGEST_REJECT_LOG_H_
