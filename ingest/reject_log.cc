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

void RejectLog::Append(std::string_view source, uint64_t line, std::string_view reason,
                       std::string_view raw) {
  std::string record;
  JsonWriter w(&record);
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  w.BeginObject()
      .Key("at_ms").Int(now)
      .Key("source").String(source)
      .Key("line").Int(static_cast<int64_t>(line))
      .Key("error").String(reason)
      .Key("raw").String(raw)
      .EndObject();
  record.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ == nullptr || bytes_ + record.size() > max_bytes_) {
    ++dropped_;
    return;
  }
  std::fwrite(record.data(), 1, record.size(), file_);
  std::fflush(file_);
  bytes_ += record.size();
}

uint64_t RejectLog::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

}  // namespace tierstream::ingest
