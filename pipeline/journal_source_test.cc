// The journal read as a Source: per shard, blocks after a position, in order.
#include "pipeline/journal_source.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace tierstream::pipeline {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "journal_source_XXXXXX").string();
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

using Records = std::vector<std::pair<uint64_t, std::string>>;

Records ReadAll(Source& source, uint32_t partition, uint64_t after) {
  Records out;
  Status s = source.ReadFrom(partition, after, [&](uint64_t position, std::string_view record) {
    out.emplace_back(position, std::string(record));
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(JournalSource, ReplaysEachShardsBlocksAfterAPositionInOrder) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto store = state::Store::Open(dir.path() + "/db", state::StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  state::Store& st = **store;
  ASSERT_TRUE(st.AppendLog(0, 1, "a", false).ok());
  ASSERT_TRUE(st.AppendLog(1, 1, "x", false).ok());
  ASSERT_TRUE(st.AppendLog(0, 2, "b", false).ok());
  ASSERT_TRUE(st.AppendLog(0, 3, "c", false).ok());

  JournalSource journal(&st, 2);
  EXPECT_EQ(journal.partitions(), 2u);
  EXPECT_EQ(journal.format(), Source::Format::kLogBlock);
  EXPECT_EQ(ReadAll(journal, 0, 0), (Records{{1, "a"}, {2, "b"}, {3, "c"}}));
  EXPECT_EQ(ReadAll(journal, 0, 1), (Records{{2, "b"}, {3, "c"}}));
  EXPECT_EQ(ReadAll(journal, 0, 3), Records{});
  EXPECT_EQ(ReadAll(journal, 1, 0), (Records{{1, "x"}}));
  // Positions a checkpoint covered are trimmed: a resumed read starts after them.
  ASSERT_TRUE(st.TrimLog(0, 2).ok());
  EXPECT_EQ(ReadAll(journal, 0, 2), (Records{{3, "c"}}));
}

TEST(JournalSource, StopsAtTheFirstRecordTheConsumerRefuses) {
  TempDir dir;
  auto store = state::Store::Open(dir.path() + "/db", state::StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_TRUE((*store)->AppendLog(0, seq, "block", false).ok());
  }
  JournalSource journal(store->get(), 1);
  std::vector<uint64_t> seen;
  Status s = journal.ReadFrom(0, 0, [&](uint64_t position, std::string_view) {
    seen.push_back(position);
    return position == 2 ? Status::Corruption("block 2 does not decode") : Status::Ok();
  });
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2}));
}

}  // namespace
}  // namespace tierstream::pipeline
