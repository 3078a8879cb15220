// Appends rejected lines to the bounded reject log.
#include "ingest/reject_log.h"

#include <chrono>

#include "common/json_writer.h"

namespace tierstream::ingest {

RejectLog::RejectLog(const std::string& path, uint64_t max_bytes) : max_bytes_(max_bytes) {
  if (path.empty()) return;
  file_ = std::fopen(path.c_str(), "ab");
  if (file_ != nullptr) {
    std::fseek(file_, 0, SEEK_END);
    long size = std::ftell(file_);
    bytes_ = size > 0 ? static_cast<uint64_t>(size) : 0;
  }
}

RejectLog::~RejectLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void RejectLog::Format(std::string_view source, uint64_t line, std::string_view reason,
                       std::string_view raw, std::string* records) {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  JsonWriter(records)
      .BeginObject()
      .Key("at_ms")
      .Int(now)
      .Key("source")
      .String(source)
      .Key("line")
      .Int(static_cast<int64_t>(line))
      .Key("error")
      .String(reason)
      .Key("raw")
      .String(raw)
      .EndObject();
  records->push_back('\n');
}

void RejectLog::Write(std::string_view records, uint64_t count) {
  if (count == 0) return;
  MutexLock lock(&mu_);
  if (file_ == nullptr || records.empty() || bytes_ + records.size() > max_bytes_) {
    dropped_ += count;
    // Within 64 KiB of the end: what callers hold in a run (BatchBuilder).
    if (file_ == nullptr || bytes_ + 64 * 1024 > max_bytes_)
      full_.store(true, std::memory_order_relaxed);
    return;
  }
  std::fwrite(records.data(), 1, records.size(), file_);
  std::fflush(file_);
  bytes_ += records.size();
}

void RejectLog::Append(std::string_view source, uint64_t line, std::string_view reason,
                       std::string_view raw) {
  std::string record;
  Format(source, line, reason, raw, &record);
  Write(record, 1);
}

uint64_t RejectLog::dropped() const {
  MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace tierstream::ingest
