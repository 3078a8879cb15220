// FileSource: NDJSON files read as a Source, one partition per file, in
// chunks of whole lines (up to 5 MiB: 4 plus the longest line). A record's
// position is the byte offset just past it, so ReadFrom(file, P) resumes at
// byte P: after the last line of a record that was applied. "-" names
// stdin, which can be read once, from the start only.
//
// Ownership: holds only the file names; each ReadFrom opens its file.
// Thread safety: thread-safe for different partitions (each read has its
// own buffer and descriptor); stdin may be read by one caller at a time.
#ifndef TIERSTREAM_PIPELINE_FILE_SOURCE_H_
#define TIERSTREAM_PIPELINE_FILE_SOURCE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/source.h"

namespace tierstream::pipeline {

class FileSource final : public Source {
 public:
  explicit FileSource(std::vector<std::string> files) : files_(std::move(files)) {}

  uint32_t partitions() const override { return static_cast<uint32_t>(files_.size()); }
  Format format() const override { return Format::kNdjson; }
  // IoError when the file cannot be opened or read, FailedPrecondition for
  // a position in stdin or past the end of the file.
  Status ReadFrom(uint32_t partition, uint64_t after, const RecordFn& fn) override;

  const std::string& file(uint32_t partition) const { return files_[partition]; }

 private:
  std::vector<std::string> files_;
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_FILE_SOURCE_H_
