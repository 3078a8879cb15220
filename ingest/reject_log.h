// RejectLog: appends each rejected line, with its reason, to
// DATA/rejected.ndjson as {"ts_ms":..,"source":..,"line":..,"error":..,"raw":..}.
//
// Bounded: once the file exceeds `max_bytes` further rejections are only
// counted, so hostile input cannot fill the disk. Thread-safe (one mutex;
// rejections are off the hot path).
#ifndef TIERSTREAM_INGEST_REJECT_LOG_H_
#define TIERSTREAM_INGEST_REJECT_LOG_H_

#include <cstdint>
#include <cstdio>
#include <mutex>
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

  void Append(std::string_view source, uint64_t line, std::string_view reason,
              std::string_view raw);
  uint64_t dropped() const;

 private:
  mutable std::mutex mu_;
  std::FILE* file_ = nullptr;
  uint64_t bytes_ = 0;
  uint64_t max_bytes_;
  uint64_t dropped_ = 0;
};

}  // namespace tierstream::ingest

#endif  // TIERSTREAM_INGEST_REJECT_LOG_H_
