// Store: opens tierstream's two RocksDB databases and keeps them healthy —
// their options, the legacy log family of old data dirs, failure tracking and
// Recover(). The event log is in store_journal.cc, the checkpoint's write
// batch in store_checkpoint.cc, reads of the state in store_reads.cc.
#include "state/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "state/store_impl.h"

namespace tierstream::state {

using store_internal::Db;
using store_internal::FromRocks;
using store_internal::kDbNames;
using store_internal::kJournalDb;
using store_internal::kStateDb;

namespace store_internal {

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsNoSpace()) return Status::Unavailable("store: " + s.ToString());
  return Status::IoError("store: " + s.ToString());
}

#if defined(__SANITIZE_THREAD__)
std::mutex g_tsan_write_mu;
#endif

}  // namespace store_internal

Store::Store(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Store::~Store() = default;

namespace {

// Data dirs from before the journal kept the event log in a "log" column
// family. Every such dir has been opened since by a binary that moved its
// entries to the journal, leaving the family empty: it is dropped. One that
// still holds entries is refused rather than opened without them.
Status DropLegacyLogFamily(const rocksdb::DBOptions& db_options, const std::string& dir,
                           std::vector<rocksdb::ColumnFamilyDescriptor> families,
                           const rocksdb::ColumnFamilyOptions& cf) {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(db_options, dir, &names).ok() ||
      std::find(names.begin(), names.end(), "log") == names.end()) {
    return Status::Ok();  // a new data dir, or one without the family
  }
  families.emplace_back("log", cf);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* opened = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, families, &handles, &opened);
  if (!s.ok()) return FromRocks(s);
  std::unique_ptr<rocksdb::DB> db(opened);
  rocksdb::ColumnFamilyHandle* log = handles.back();
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), log));
  it->SeekToFirst();
  Status result;
  if (it->Valid()) {
    result = Status::FailedPrecondition(
        "store: the data dir holds an event log from before the journal; open it once with a "
        "tierstream release that moves it");
  } else if (!it->status().ok()) {
    result = FromRocks(it->status());
  } else {
    result = FromRocks(db->DropColumnFamily(log));
  }
  it.reset();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  const rocksdb::Status closed = db->Close();
  if (result.ok() && !closed.ok()) result = FromRocks(closed);
  return result;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const StoreOptions& options) {
  auto rep = std::make_unique<Rep>();
  rep->dir = dir;
  rocksdb::DBOptions& db_options = rep->db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.max_total_wal_size = 512u << 20;
  db_options.db_write_buffer_size = options.write_buffer_bytes * 4;
  db_options.max_open_files = kStateMaxOpenFiles;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  // Lookups of users who were never stored must not touch data blocks.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));

  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = options.write_buffer_bytes;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // LZ4 where this RocksDB was built with it (opening a family with a
  // compression it lacks fails).
  const std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  cf.compression =
      std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end()
          ? rocksdb::kLZ4Compression
          : rocksdb::kNoCompression;

  rep->families = {
      {rocksdb::kDefaultColumnFamilyName, cf},
      {"users", cf},
      {"seen", cf},
      {"idruns", cf},
  };
  Status legacy = DropLegacyLogFamily(db_options, dir, rep->families, cf);
  if (!legacy.ok()) return legacy;
  rocksdb::Status s = rep->OpenState();
  if (!s.ok()) return FromRocks(s);

  rocksdb::Options& journal_options = rep->journal_options;
  journal_options.create_if_missing = true;
  journal_options.max_background_jobs = 1;
  journal_options.write_buffer_size = options.write_buffer_bytes;
  journal_options.compression = rocksdb::kNoCompression;
  journal_options.max_open_files = kJournalMaxOpenFiles;
  // Its manifest stays tiny: no need to reserve RocksDB's default 4 MB.
  journal_options.manifest_preallocation_size = 256 << 10;
  s = rep->OpenJournal();
  if (!s.ok()) return FromRocks(s);
  return std::unique_ptr<Store>(new Store(std::move(rep)));
}

bool Store::failing() const { return rep_->any_failing.load(std::memory_order_acquire); }

std::string Store::failure() const {
  if (!failing()) return {};
  std::lock_guard<std::mutex> lock(rep_->failure_mu);
  return rep_->failure;
}

Status Store::Recover(bool* reopened, bool* unusable) {
  *reopened = false;
  *unusable = false;
  Rep& r = *rep_;
  for (const Db which : {kJournalDb, kStateDb}) {
    if (!r.failing[which].load()) continue;
    rocksdb::DB* db = which == kJournalDb ? r.journal.get() : r.db.get();
    // Resume() clears what RocksDB can recover from in place (and does
    // nothing when there was no background error, as after a failed read).
    rocksdb::Status s = db->Resume();
    if (!s.ok()) {
      // A fatal background error (a file that could not be created) stays
      // with the instance: only a new one clears it.
      *reopened = true;
      which == kJournalDb ? r.CloseJournal() : r.CloseState();
      for (int attempt = 0; attempt < 5; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        s = which == kJournalDb ? r.OpenJournal() : r.OpenState();
        if (s.ok()) break;
      }
      if (!s.ok()) {
        *unusable = true;
        return Status::IoError(std::string("store: cannot open the ") + kDbNames[which] +
                               " database again: " + s.ToString());
      }
    }
    r.failing[which].store(false);
  }
  std::lock_guard<std::mutex> lock(r.failure_mu);
  r.failure.clear();
  r.any_failing.store(false, std::memory_order_release);
  return Status::Ok();
}

}  // namespace tierstream::state
