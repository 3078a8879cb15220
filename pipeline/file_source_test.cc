// NDJSON files as a Source: records of whole lines at byte positions, and a
// read resumed at any position it gave out sees exactly the rest.
#include "pipeline/file_source.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace tierstream::pipeline {
namespace {

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    std::string templ = (std::filesystem::temp_directory_path() / "file_source_XXXXXX").string();
    const int fd = ::mkstemp(templ.data());
    if (fd >= 0) ::close(fd);
    path_ = templ;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

using Records = std::vector<std::pair<uint64_t, std::string>>;

Records ReadAll(FileSource& source, uint64_t after) {
  Records out;
  Status s = source.ReadFrom(0, after, [&](uint64_t position, std::string_view record) {
    out.emplace_back(position, std::string(record));
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

std::string Concat(const Records& records) {
  std::string out;
  for (const auto& [position, record] : records) out += record;
  return out;
}

TEST(FileSource, RecordsAreWholeLinesAtTheByteOffsetPastThem) {
  // More than one buffer (5 MiB), so that a record ends at the last newline of
  // a chunk and the next one carries the rest; the last line has no newline.
  std::string content;
  for (int i = 0; content.size() < (9u << 20); ++i) {
    content += R"({"event_id":"e)" + std::to_string(i) + R"(","type":"message"})" + "\n";
  }
  content += R"({"event_id":"last"})";
  TempFile file(content);
  FileSource source({file.path()});
  EXPECT_EQ(source.partitions(), 1u);
  EXPECT_EQ(source.format(), Source::Format::kNdjson);
  const Records records = ReadAll(source, 0);
  ASSERT_GE(records.size(), 2u);
  EXPECT_EQ(Concat(records), content);
  uint64_t end = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    end += records[i].second.size();
    EXPECT_EQ(records[i].first, end) << i;
    if (i + 1 < records.size()) {
      EXPECT_EQ(records[i].second.back(), '\n') << i;
    }
  }
  // Resumed after the first record: exactly the rest.
  EXPECT_EQ(Concat(ReadAll(source, records[0].first)), content.substr(records[0].first));
  EXPECT_TRUE(ReadAll(source, content.size()).empty());
}

TEST(FileSource, SaysWhyAPositionCannotBeRead) {
  TempFile file("{}\n");
  FileSource source({file.path(), "-", file.path() + ".missing"});
  auto read = [&](uint32_t partition, uint64_t after) {
    return source.ReadFrom(partition, after,
                           [](uint64_t, std::string_view) { return Status::Ok(); });
  };
  EXPECT_EQ(read(0, 4).code(), StatusCode::kFailedPrecondition);  // past the end
  EXPECT_EQ(read(1, 1).code(), StatusCode::kFailedPrecondition);  // stdin, not from the start
  const Status missing = read(2, 0);
  EXPECT_EQ(missing.code(), StatusCode::kIoError);
  EXPECT_NE(missing.message().find("cannot read " + file.path() + ".missing"), std::string::npos);
}

}  // namespace
}  // namespace tierstream::pipeline
