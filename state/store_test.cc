#include "state/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tierstream::state {
namespace {

// A fresh data dir per test, removed afterwards.
class StoreTest : public ::testing::Test {
 protected:
  StoreTest() {
    dir_ = (std::filesystem::temp_directory_path() /
            ("tierstream_store_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
  }
  ~StoreTest() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    auto opened = Store::Open(dir_, StoreOptions{});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  std::string GetUser(uint32_t shard, std::string_view id) {
    std::string value;
    bool found = false;
    EXPECT_TRUE(store_->GetUser(shard, id, &value, &found).ok());
    return found ? value : "<none>";
  }
  std::vector<std::pair<uint64_t, std::string>> Log(uint32_t shard, uint64_t after = 0) {
    std::vector<std::pair<uint64_t, std::string>> blocks;
    EXPECT_TRUE(store_
                    ->ScanLog(shard, after,
                              [&](uint64_t seq, std::string_view block) {
                                blocks.emplace_back(seq, std::string(block));
                                return Status::Ok();
                              })
                    .ok());
    return blocks;
  }
  std::vector<std::pair<int32_t, std::string>> Seen(uint32_t shard) {
    std::vector<std::pair<int32_t, std::string>> blobs;
    EXPECT_TRUE(store_
                    ->ScanSeen(shard,
                               [&](int32_t day, std::string_view blob) {
                                 blobs.emplace_back(day, std::string(blob));
                                 return Status::Ok();
                               })
                    .ok());
    return blobs;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CheckpointedUsersReadBackPerShardAndSurviveAReopen) {
  Open();
  EXPECT_EQ(GetUser(0, "alice"), "<none>");
  {
    Store::Checkpoint cp(store_.get());
    cp.PutUser(0, "alice", "a0");
    cp.StageUser(0, "carol", "c0");  // staged users may come in any order
    cp.StageUser(0, "bob", "b0");
    cp.StageUser(1, "alice", "a1");  // another shard's alice
    EXPECT_GT(cp.ApproximateBytes(), 0u);
    ASSERT_TRUE(store_->Commit(&cp, true /*sync*/).ok());
  }
  Open();
  EXPECT_EQ(GetUser(0, "alice"), "a0");
  EXPECT_EQ(GetUser(0, "bob"), "b0");
  EXPECT_EQ(GetUser(1, "alice"), "a1");
  EXPECT_EQ(GetUser(1, "bob"), "<none>");
  std::vector<std::string> scanned;
  ASSERT_TRUE(store_
                  ->ScanUsers(0, "alice",
                              [&](std::string_view id, std::string_view value) {
                                scanned.push_back(std::string(id) + "=" + std::string(value));
                                return true;
                              })
                  .ok());
  EXPECT_EQ(scanned, (std::vector<std::string>{"bob=b0", "carol=c0"}));  // after "alice", in order
  EXPECT_FALSE(store_->failing());
  EXPECT_EQ(store_->failure(), "");
}

// Bytes that do not compress (tables are compressed).
std::string Noise(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (char& c : s) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return s;
}

// The figures /metrics shows come from each database, not one twice.
TEST_F(StoreTest, FiguresDescribeEachDatabase) {
  Open();
  StoreFigures f = store_->Figures();
  EXPECT_EQ(f.journal.live_sst_bytes, 0u);
  EXPECT_EQ(f.state.live_sst_bytes, 0u);
  EXPECT_EQ(f.state.write_stops + f.journal.write_stops, 0u);
  const StoreFigures empty = f;
  ASSERT_TRUE(store_->AppendLog(0, 1, Noise(4000, 1), false).ok());
  f = store_->Figures();
  EXPECT_GT(f.journal.memtable_bytes, empty.journal.memtable_bytes + 4000);
  EXPECT_LT(f.state.memtable_bytes, empty.state.memtable_bytes + 4000);
  const StoreFigures logged = f;
  {
    Store::Checkpoint cp(store_.get());
    cp.PutUser(0, "alice", Noise(20000, 2));
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
  }
  f = store_->Figures();
  EXPECT_GT(f.state.memtable_bytes, logged.state.memtable_bytes + 20000);
  EXPECT_LT(f.journal.memtable_bytes, logged.journal.memtable_bytes + 20000);
  Open();  // a reopen flushes what its WAL held into tables
  f = store_->Figures();
  EXPECT_GT(f.state.live_sst_bytes, 20000u);
  EXPECT_GT(f.journal.live_sst_bytes, 4000u);
  EXPECT_LT(f.journal.live_sst_bytes, 20000u);
}

TEST_F(StoreTest, UsersAreFoundByTheirHashes) {
  Open();
  {
    Store::Checkpoint cp(store_.get());
    cp.PutUserIndex(0, 7, "bob");
    cp.PutUserIndex(0, 7, "alice");  // a collision
    cp.PutUserIndex(0, 3, "carol");
    cp.PutUserIndex(0, 3, "carol");  // idempotent
    cp.PutUserIndex(1, 7, "dave");   // another shard
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
  }
  std::vector<std::string> ids;
  const std::vector<uint64_t> hashes = {3, 5, 7};
  ASSERT_TRUE(store_->FindUsersByHash(0, hashes, &ids).ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"carol", "alice", "bob"}));  // (hash, id) order
  ids.clear();
  ASSERT_TRUE(store_->FindUsersByHash(1, hashes, &ids).ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"dave"}));
}

TEST_F(StoreTest, MetaIsWrittenDirectlyOrWithACheckpoint) {
  Open();
  std::string value;
  bool found = true;
  ASSERT_TRUE(store_->GetMeta("shards", &value, &found).ok());
  EXPECT_FALSE(found);
  ASSERT_TRUE(store_->PutMeta("shards", "4", true /*sync*/).ok());
  {
    Store::Checkpoint cp(store_.get());
    cp.PutMeta("shard/0", "meta0");
    ASSERT_TRUE(store_->Commit(&cp, true).ok());
  }
  Open();
  ASSERT_TRUE(store_->GetMeta("shards", &value, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(value, "4");
  ASSERT_TRUE(store_->GetMeta("shard/0", &value, &found).ok());
  EXPECT_EQ(value, "meta0");
}

TEST_F(StoreTest, TheJournalScansTrimsAndDropsPerShard) {
  Open();
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_TRUE(store_->AppendLog(0, seq, "b" + std::to_string(seq), seq == 5 /*sync*/).ok());
  }
  ASSERT_TRUE(store_->AppendLog(1, 1, "other", false).ok());
  Open();  // appended blocks survive a reopen (the WAL)
  EXPECT_EQ(Log(0).size(), 5u);
  EXPECT_EQ(Log(0, 3), (std::vector<std::pair<uint64_t, std::string>>{{4, "b4"}, {5, "b5"}}));
  ASSERT_TRUE(store_->TrimLog(0, 2).ok());  // a checkpoint covers 1..2
  EXPECT_EQ(Log(0).front().first, 3u);
  ASSERT_TRUE(store_->DeleteLogAfter(0, 4).ok());  // 5 was never acknowledged
  EXPECT_EQ(Log(0), (std::vector<std::pair<uint64_t, std::string>>{{3, "b3"}, {4, "b4"}}));
  EXPECT_EQ(Log(1), (std::vector<std::pair<uint64_t, std::string>>{{1, "other"}}));
}

TEST_F(StoreTest, SeenBlobsAreKeptByDayAndDeletedByRange) {
  Open();
  {
    Store::Checkpoint cp(store_.get());
    cp.PutSeen(0, -3, 1, "neg");  // days before 1970 sort before later ones
    cp.PutSeen(0, 10, 1, "d10s1");
    cp.PutSeen(0, 10, 2, "d10s2");
    cp.PutSeen(0, 11, 3, "d11");
    cp.PutSeen(1, 10, 1, "other");
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
  }
  EXPECT_EQ(Seen(0), (std::vector<std::pair<int32_t, std::string>>{
                         {-3, "neg"}, {10, "d10s1"}, {10, "d10s2"}, {11, "d11"}}));
  {
    Store::Checkpoint cp(store_.get());
    cp.DeleteSeenBefore(0, 10);
    cp.DeleteSeenUpTo(0, 10, 1);
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
  }
  EXPECT_EQ(Seen(0), (std::vector<std::pair<int32_t, std::string>>{{10, "d10s2"}, {11, "d11"}}));
  {
    Store::Checkpoint cp(store_.get());
    cp.DeleteAllSeen(0);
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
  }
  EXPECT_TRUE(Seen(0).empty());
  EXPECT_EQ(Seen(1).size(), 1u);
}

TEST_F(StoreTest, IdRunsKeepTheirDescriptorsAndBlocks) {
  Open();
  {
    Store::Checkpoint cp(store_.get());
    cp.PutIdBlock(0, 1, 0, "r1b0");
    cp.PutIdBlock(0, 1, 1, "r1b1");
    cp.PutIdRun(0, 1, "desc1");
    cp.PutIdBlock(0, 2, 0, "r2b0");
    cp.PutIdRun(0, 2, "desc2");
    cp.PutIdBlock(0, 3, 0, "orphan");  // a spill whose descriptor never committed
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
  }
  std::string bytes;
  ASSERT_TRUE(store_->ReadIdBlock(0, 1, 1, &bytes).ok());
  EXPECT_EQ(bytes, "r1b1");
  std::vector<std::string> descriptors;
  auto scan = [&] {
    descriptors.clear();
    EXPECT_TRUE(store_
                    ->ScanIdRuns(0,
                                 [&](std::string_view d) {
                                   descriptors.emplace_back(d);
                                   return Status::Ok();
                                 })
                    .ok());
    return descriptors;
  };
  EXPECT_EQ(scan(), (std::vector<std::string>{"desc1", "desc2"}));  // blocks are not runs
  {
    Store::Checkpoint cp(store_.get());
    cp.DeleteIdRun(0, 1);
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
  }
  EXPECT_EQ(scan(), (std::vector<std::string>{"desc2"}));
  EXPECT_EQ(store_->ReadIdBlock(0, 1, 0, &bytes).code(), StatusCode::kCorruption);  // missing
  ASSERT_TRUE(store_->DeleteIdBlocksFrom(0, 3).ok());
  EXPECT_EQ(store_->ReadIdBlock(0, 3, 0, &bytes).code(), StatusCode::kCorruption);
  ASSERT_TRUE(store_->ReadIdBlock(0, 2, 0, &bytes).ok());
  EXPECT_EQ(bytes, "r2b0");
}

// Data dirs from before the journal had a "log" column family: an empty one
// is dropped at open; one that still holds events refuses the open.
void MakeLegacyDir(const std::string& dir, bool with_entry) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, options}, {"log", options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, families, &handles, &db).ok());
  if (with_entry) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[1], "k", "v").ok());
  }
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  delete db;  // RocksDB's own factory hands out a bare pointer
}

TEST_F(StoreTest, AnEmptyPreJournalLogFamilyIsDropped) {
  MakeLegacyDir(dir_, false);
  Open();
  store_.reset();
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_, &names).ok());
  EXPECT_EQ(std::count(names.begin(), names.end(), "log"), 0);
  Open();
}

TEST_F(StoreTest, APreJournalLogWithEventsRefusesTheOpen) {
  MakeLegacyDir(dir_, true);
  auto opened = Store::Open(dir_, StoreOptions{});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
}

// The feed's changes are opaque to the store: "change <cursor>" will do.
std::vector<std::string> Changes(uint64_t first, size_t n) {
  std::vector<std::string> out;
  for (uint64_t c = first; c < first + n; ++c) out.push_back("change " + std::to_string(c));
  return out;
}

TEST_F(StoreTest, ChangesScanFromAnyCursorAcrossRecordsAndTrimWholeRecords) {
  Open();
  // 1200 changes in one write (records of 512, 512, 176), then 3 more;
  // a hole at 1204 (a cursor claimed by a write that never happened).
  ASSERT_TRUE(store_->AppendChanges(0, {}, {}, 1, Changes(1, 1200), 1200, false).ok());
  ASSERT_TRUE(store_->AppendChanges(1, {}, {}, 1201, Changes(1201, 3), 3, false).ok());
  ASSERT_TRUE(store_->AppendChanges(0, {}, {}, 1205, Changes(1205, 2), 1202, false).ok());
  auto scan = [&](uint64_t after, uint64_t before, size_t max = SIZE_MAX) {
    std::vector<uint64_t> cursors;
    EXPECT_TRUE(store_
                    ->ScanChanges(after, before,
                                  [&](uint64_t cursor, std::string_view v) {
                                    EXPECT_EQ(v, "change " + std::to_string(cursor));
                                    cursors.push_back(cursor);
                                    return cursors.size() < max;
                                  })
                    .ok());
    return cursors;
  };
  auto all = scan(0, UINT64_MAX);
  ASSERT_EQ(all.size(), 1205u);
  EXPECT_EQ(all.front(), 1u);
  EXPECT_EQ(all[1199], 1200u);
  EXPECT_EQ(all[1202], 1203u);
  EXPECT_EQ(all[1203], 1205u);  // past the hole
  // From inside a record, across a record's end, bounded above.
  auto mid = scan(700, 1030);
  ASSERT_EQ(mid.size(), 329u);
  EXPECT_EQ(mid.front(), 701u);
  EXPECT_EQ(mid.back(), 1029u);
  EXPECT_EQ(scan(511, 514), std::vector<uint64_t>({512, 513}));
  EXPECT_EQ(scan(1203, UINT64_MAX), std::vector<uint64_t>({1205, 1206}));
  EXPECT_EQ(scan(1206, UINT64_MAX), std::vector<uint64_t>{});
  EXPECT_EQ(scan(100, UINT64_MAX, 3), std::vector<uint64_t>({101, 102, 103}));
  uint64_t last = 0, trimmed = 0, shard_seq = 0;
  ASSERT_TRUE(store_->GetChangeBounds(&last, &trimmed).ok());
  EXPECT_EQ(last, 1206u);
  EXPECT_EQ(trimmed, 0u);
  ASSERT_TRUE(store_->GetChangePosition(0, &shard_seq).ok());
  EXPECT_EQ(shard_seq, 1202u);

  // Trimming through 1100 deletes the two whole records before it, not the
  // one that holds 1100.
  uint64_t through = 0;
  ASSERT_TRUE(store_->TrimChanges(1100, &through).ok());
  EXPECT_EQ(through, 1024u);
  all = scan(0, UINT64_MAX);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), 1025u);
  ASSERT_TRUE(store_->TrimChanges(1000, &through).ok());  // nothing more ends by 1000
  EXPECT_EQ(through, 0u);
  Open();  // the bounds survive a reopen
  ASSERT_TRUE(store_->GetChangeBounds(&last, &trimmed).ok());
  EXPECT_EQ(last, 1206u);
  EXPECT_EQ(trimmed, 1024u);
  ASSERT_TRUE(store_->TrimChanges(5000, &through).ok());
  EXPECT_EQ(through, 1206u);
  EXPECT_TRUE(scan(0, UINT64_MAX).empty());
  ASSERT_TRUE(store_->GetChangeBounds(&last, &trimmed).ok());
  EXPECT_EQ(last, 1206u);  // the trim point: cursors go on after it
}

TEST_F(StoreTest, ChangesWrittenOnePerKeyStillRead) {
  Open();
  ASSERT_TRUE(store_->AppendChanges(0, {}, {}, 1, Changes(1, 2), 2, false).ok());
  store_.reset();
  {
    // The feed's first format: a key per change, the encoded change as value.
    const std::string journal = dir_ + "/journal";
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), journal, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), journal, families, &handles, &db).ok());
    const auto it = std::find(names.begin(), names.end(), "changes");
    ASSERT_NE(it, names.end());
    rocksdb::ColumnFamilyHandle* changes = handles[it - names.begin()];
    for (uint64_t c : {3, 4}) {
      std::string key(1, 'c');
      for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(c >> shift));
      ASSERT_TRUE(
          db->Put(rocksdb::WriteOptions(), changes, key, "change " + std::to_string(c)).ok());
    }
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    delete db;  // RocksDB's own factory hands out a bare pointer
  }
  Open();
  std::vector<uint64_t> cursors;
  ASSERT_TRUE(store_
                  ->ScanChanges(1, UINT64_MAX,
                                [&](uint64_t cursor, std::string_view v) {
                                  EXPECT_EQ(v, "change " + std::to_string(cursor));
                                  cursors.push_back(cursor);
                                  return true;
                                })
                  .ok());
  EXPECT_EQ(cursors, std::vector<uint64_t>({2, 3, 4}));
  uint64_t last = 0, trimmed = 0;
  ASSERT_TRUE(store_->GetChangeBounds(&last, &trimmed).ok());
  EXPECT_EQ(last, 4u);
}

// The Kafka mode moves a shard between stores as the images of its
// checkpoints: applied in order on another store, after a wipe of what that
// store held of the shard, they give the same shard, and leave the others be.
TEST_F(StoreTest, AShardsCheckpointImagesRebuildItOnAnotherStore) {
  const std::vector<std::string> meta_keys = {"shard/1", "user_index/1"};
  auto contents = [&](Store& store, uint32_t shard) {
    std::string all;
    EXPECT_TRUE(store
                    .ScanUsers(shard, "",
                               [&](std::string_view id, std::string_view v) {
                                 all += std::string(id) + "=" + std::string(v) + ";";
                                 return true;
                               })
                    .ok());
    EXPECT_TRUE(store
                    .ScanSeen(shard,
                              [&](int32_t day, std::string_view blob) {
                                all += "seen" + std::to_string(day) + "=" + std::string(blob) + ";";
                                return Status::Ok();
                              })
                    .ok());
    EXPECT_TRUE(store
                    .ScanIdRuns(shard,
                                [&](std::string_view d) {
                                  all += "run=" + std::string(d) + ";";
                                  return Status::Ok();
                                })
                    .ok());
    std::vector<std::string> ids;
    const uint64_t hashes[] = {7, 9};
    EXPECT_TRUE(store.FindUsersByHash(shard, hashes, &ids).ok());
    for (const std::string& id : ids) all += "indexed " + id + ";";
    for (const std::string& key :
         {"shard/" + std::to_string(shard), "user_index/" + std::to_string(shard)}) {
      std::string v;
      bool found = false;
      EXPECT_TRUE(store.GetMeta(key, &v, &found).ok());
      all += key + (found ? "=" + v : " absent") + ";";
    }
    return all;
  };
  Open();
  std::vector<std::string> chunks;
  {
    Store::Checkpoint cp(store_.get());
    for (int i = 0; i < 50; ++i) {
      cp.StageUser(1, "user-" + std::to_string(i),
                   std::string(100, static_cast<char>('a' + i % 26)));
    }
    cp.PutUserIndex(1, 7, "user-3");
    cp.PutMeta("shard/1", "meta one");
    cp.PutMeta("user_index/1", "stamp");
    cp.PutSeen(1, 20000, 1, "ids-a");
    cp.PutSeen(1, 20001, 2, "ids-b");
    cp.PutIdRun(1, 4, "run four");
    cp.PutIdBlock(1, 4, 0, "block");
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
    ASSERT_TRUE(Store::ExportImage(cp, 1000, &chunks).ok());
  }
  std::vector<std::string> more;
  {
    Store::Checkpoint cp(store_.get());
    cp.PutUser(1, "user-0", "changed");
    cp.DeleteSeenBefore(1, 20001);
    cp.DeleteIdRun(1, 4);
    cp.PutMeta("shard/1", "meta two");
    ASSERT_TRUE(store_->Commit(&cp, false).ok());
    ASSERT_TRUE(Store::ExportImage(cp, 1000, &more).ok());
  }
  EXPECT_GT(chunks.size(), 3u);  // cut at about 1000 bytes
  for (const std::string& c : chunks) EXPECT_LT(c.size(), 1200u);
  const std::string want = contents(*store_, 1);
  EXPECT_NE(want.find("user-0=changed"), std::string::npos) << want;
  EXPECT_EQ(want.find("run four"), std::string::npos) << want;

  auto other = Store::Open(dir_ + "_other", StoreOptions{});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  Store& b = **other;
  {
    Store::Checkpoint cp(&b);
    cp.PutUser(1, "stale", "x");  // what the other store held of shard 1
    cp.PutMeta("shard/1", "stale meta");
    cp.PutUser(2, "neighbour", "y");
    ASSERT_TRUE(b.Commit(&cp, false).ok());
    ASSERT_TRUE(b.AppendLog(1, 1, "stale block", false).ok());
  }
  ASSERT_TRUE(b.WipeShard(1, meta_keys).ok());
  for (const auto* list : {&chunks, &more}) {
    for (const std::string& c : *list) ASSERT_TRUE(b.ApplyImage(1, meta_keys, c).ok());
  }
  EXPECT_EQ(contents(b, 1), want);
  EXPECT_NE(contents(b, 2).find("neighbour=y"), std::string::npos);
  size_t blocks = 0;
  ASSERT_TRUE(b.ScanLog(1, 0, [&](uint64_t, std::string_view) {
                 ++blocks;
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(blocks, 0u);

  // An image is applied to its own shard only.
  EXPECT_EQ(b.ApplyImage(2, {"shard/2"}, more[0]).code(), StatusCode::kCorruption);
  EXPECT_EQ(b.ApplyImage(1, meta_keys, more[0].substr(0, more[0].size() - 1)).code(),
            StatusCode::kCorruption);
  other->reset();
  std::filesystem::remove_all(dir_ + "_other");
}

}  // namespace
}  // namespace tierstream::state
