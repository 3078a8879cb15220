// The private side of Store, shared by its files (store.cc opens and heals
// the databases, store_journal.cc keeps the event log, store_checkpoint.cc
// builds the checkpoint's write batch, store_reads.cc reads the state):
// the key layouts of every column family and the representations of Store
// and Store::Checkpoint. Included by state/store*.cc only, so that RocksDB's
// headers stay in the store.
#ifndef TIERSTREAM_STATE_STORE_IMPL_H_
#define TIERSTREAM_STATE_STORE_IMPL_H_

#include <absl/base/thread_annotations.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/arena.h"
#include "common/mutex.h"
#include "common/status.h"
#include "state/store.h"

namespace tierstream::state::store_internal {

Status FromRocks(const rocksdb::Status& s);

inline void PutBe32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>(v >> (i * 8)));
}
inline void PutBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(v >> (i * 8)));
}
inline uint64_t GetBe(std::string_view s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | static_cast<uint8_t>(s[pos + static_cast<size_t>(i)]);
  return v;
}

inline std::string LogKey(uint32_t shard, uint64_t seq) {
  std::string k;
  PutBe32(&k, shard);
  PutBe64(&k, seq);
  return k;
}

// The change feed (journal database, family "changes").
inline constexpr char kChangeRecordPrefix = 'c';
inline constexpr char kChangePositionPrefix = 'p';
inline constexpr char kChangesTrimmedKey[] = "t";
inline std::string ChangeKey(uint64_t cursor) {
  std::string k(1, kChangeRecordPrefix);
  PutBe64(&k, cursor);
  return k;
}
inline std::string ChangePositionKey(uint32_t shard) {
  std::string k(1, kChangePositionPrefix);
  PutBe32(&k, shard);
  return k;
}

// Days are biased so that the big-endian keys sort like the signed days.
inline uint32_t BiasDay(int32_t day) { return static_cast<uint32_t>(day) ^ 0x80000000u; }
inline int32_t UnbiasDay(uint32_t v) { return static_cast<int32_t>(v ^ 0x80000000u); }

inline std::string SeenKey(uint32_t shard, int32_t day, uint64_t sub) {
  std::string k;
  PutBe32(&k, shard);
  PutBe32(&k, BiasDay(day));
  PutBe64(&k, sub);
  return k;
}

inline std::string IdRunKey(uint32_t shard, uint64_t run) {
  std::string k;
  PutBe32(&k, shard);
  k.push_back('\0');
  PutBe64(&k, run);
  return k;
}

inline std::string IdBlockKey(uint32_t shard, uint64_t run, uint32_t block) {
  std::string k;
  PutBe32(&k, shard);
  k.push_back('\1');
  PutBe64(&k, run);
  PutBe32(&k, block);
  return k;
}

inline rocksdb::Slice S(std::string_view v) { return rocksdb::Slice(v.data(), v.size()); }

inline std::string UserKey(uint32_t shard, std::string_view user_id) {
  std::string k;
  k.reserve(4 + user_id.size());
  PutBe32(&k, shard);
  k.append(user_id);
  return k;
}

// In the meta column family, after a byte no meta name starts with.
inline constexpr char kUserIndexPrefix = '\x01';
inline std::string UserIndexPrefix(uint32_t shard, uint64_t hash) {
  std::string k;
  k.reserve(13);
  k.push_back(kUserIndexPrefix);
  PutBe32(&k, shard);
  PutBe64(&k, hash);
  return k;
}

// Under ThreadSanitizer writes are serialised here: Debian's RocksDB is not
// instrumented, so its write-group hand-off (one thread copies the others'
// batches into the WAL) would be reported as a race in every test.
#if defined(__SANITIZE_THREAD__)
extern Mutex g_tsan_write_mu;
#define TIERSTREAM_TSAN_WRITE_LOCK \
  MutexLock tsan_lock(&::tierstream::state::store_internal::g_tsan_write_mu)
#else
#define TIERSTREAM_TSAN_WRITE_LOCK
#endif

// The two databases, for failure tracking.
enum Db : int { kJournalDb = 0, kStateDb = 1 };
inline constexpr const char* kDbNames[] = {"journal", "state"};

}  // namespace tierstream::state::store_internal

namespace tierstream::state {

struct Store::Rep {
  // The event log lives in its own database (DIR/journal): its small
  // acknowledged appends must never queue behind a checkpoint's big write
  // batch in one write group.
  std::unique_ptr<rocksdb::DB> journal;
  // The journal's families: the log (default) and the change feed.
  std::vector<rocksdb::ColumnFamilyHandle*> journal_handles;
  rocksdb::ColumnFamilyHandle* changes = nullptr;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* users = nullptr;
  rocksdb::ColumnFamilyHandle* seen = nullptr;
  rocksdb::ColumnFamilyHandle* idruns = nullptr;
  // How each database is opened, kept to open it again (Recover).
  std::string dir;
  rocksdb::DBOptions db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  rocksdb::Options journal_options;
  // Failures since the store was last healthy (failing(), Recover()).
  std::atomic<bool> any_failing{false};
  std::atomic<bool> failing[2] = {false, false};
  mutable Mutex failure_mu;
  std::string failure ABSL_GUARDED_BY(failure_mu);  // the first one

  rocksdb::Status OpenState() {
    rocksdb::DB* opened = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(db_options, dir, families, &handles, &opened);
    if (!s.ok()) return s;
    db.reset(opened);
    meta = handles[0];
    users = handles[1];
    seen = handles[2];
    idruns = handles[3];
    return s;
  }
  rocksdb::Status OpenJournal() {
    rocksdb::DB* opened = nullptr;
    rocksdb::DBOptions db_opts(journal_options);
    db_opts.create_missing_column_families = true;  // "changes" is new in older data dirs
    const rocksdb::ColumnFamilyOptions cf_opts(journal_options);
    const std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, cf_opts}, {"changes", cf_opts}};
    rocksdb::Status s =
        rocksdb::DB::Open(db_opts, dir + "/journal", cfs, &journal_handles, &opened);
    if (!s.ok()) return s;
    journal.reset(opened);
    changes = journal_handles[1];
    return s;
  }
  void CloseState() {
    if (!db) return;
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    handles.clear();
    (void)db->Close();  // a failed database reports its error; it closes all the same
    db.reset();
  }
  void CloseJournal() {
    if (!journal) return;
    for (auto* h : journal_handles) journal->DestroyColumnFamilyHandle(h);
    journal_handles.clear();
    changes = nullptr;
    (void)journal->Close();
    journal.reset();
  }

  // Converts `s` and, when it is a failure, remembers that `which` failed.
  // A write fails the database on any error; a read only on an I/O error (a
  // table file that cannot be opened), not on what it read.
  Status Note(store_internal::Db which, const rocksdb::Status& s, bool write) {
    if (s.ok()) return Status::Ok();
    if (write || s.IsIOError()) {
      if (!failing[which].exchange(true)) {
        MutexLock lock(&failure_mu);
        if (failure.empty())
          failure = std::string(store_internal::kDbNames[which]) + ": " + s.ToString();
      }
      any_failing.store(true, std::memory_order_release);
    }
    return store_internal::FromRocks(s);
  }

  ~Rep() {
    CloseJournal();
    CloseState();
  }
};

struct Store::Checkpoint::Rep {
  Rep(size_t expected_bytes, size_t expected_users) : batch(expected_bytes) {
    staged_users.reserve(expected_users);
    staged_index_keys.reserve(expected_users);
  }
  Store::Rep* store;
  rocksdb::WriteBatch batch;
  // Users and user-index keys are staged unsorted (index keys come in hash
  // order, i.e. at random), their key and value bytes back to back in blocks
  // that never move: a string that doubled would copy the snapshot so far
  // into fresh pages, tens of ms inside one step of the worker.
  struct Staged {
    const char* data;
    uint32_t key_size;
    uint32_t value_size;
  };
  Arena staged_bytes;
  size_t staged_size = 0;
  std::vector<Staged> staged_users;
  std::vector<Staged> staged_index_keys;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_STORE_IMPL_H_
