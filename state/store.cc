#include "state/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace tierstream::state {

namespace {

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsNoSpace()) return Status::Unavailable("store: " + s.ToString());
  return Status::IoError("store: " + s.ToString());
}

void PutBe32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>(v >> (i * 8)));
}
void PutBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(v >> (i * 8)));
}
uint64_t GetBe(std::string_view s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | static_cast<uint8_t>(s[pos + static_cast<size_t>(i)]);
  return v;
}

std::string LogKey(uint32_t shard, uint64_t seq) {
  std::string k;
  PutBe32(&k, shard);
  PutBe64(&k, seq);
  return k;
}

// Days are biased so that the big-endian keys sort like the signed days.
uint32_t BiasDay(int32_t day) { return static_cast<uint32_t>(day) ^ 0x80000000u; }
int32_t UnbiasDay(uint32_t v) { return static_cast<int32_t>(v ^ 0x80000000u); }

std::string SeenKey(uint32_t shard, int32_t day, uint64_t sub) {
  std::string k;
  PutBe32(&k, shard);
  PutBe32(&k, BiasDay(day));
  PutBe64(&k, sub);
  return k;
}

std::string IdRunKey(uint32_t shard, uint64_t run) {
  std::string k;
  PutBe32(&k, shard);
  k.push_back('\0');
  PutBe64(&k, run);
  return k;
}

std::string IdBlockKey(uint32_t shard, uint64_t run, uint32_t block) {
  std::string k;
  PutBe32(&k, shard);
  k.push_back('\1');
  PutBe64(&k, run);
  PutBe32(&k, block);
  return k;
}

rocksdb::Slice S(std::string_view v) { return rocksdb::Slice(v.data(), v.size()); }

// Under ThreadSanitizer writes are serialised here: Debian's RocksDB is not
// instrumented, so its write-group hand-off (one thread copies the others'
// batches into the WAL) would be reported as a race in every test.
#if defined(__SANITIZE_THREAD__)
std::mutex g_tsan_write_mu;
#define TIERSTREAM_TSAN_WRITE_LOCK std::lock_guard<std::mutex> tsan_lock(g_tsan_write_mu)
#else
#define TIERSTREAM_TSAN_WRITE_LOCK
#endif

// The two databases, for failure tracking.
enum Db : int { kJournalDb = 0, kStateDb = 1 };
const char* const kDbNames[] = {"journal", "state"};

}  // namespace

struct Store::Rep {
  // The event log lives in its own database (DIR/journal): its small
  // acknowledged appends must never queue behind a checkpoint's big write
  // batch in one write group.
  std::unique_ptr<rocksdb::DB> journal;
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
  mutable std::mutex failure_mu;
  std::string failure;  // the first one

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
    rocksdb::Status s = rocksdb::DB::Open(journal_options, dir + "/journal", &opened);
    if (s.ok()) journal.reset(opened);
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
    (void)journal->Close();
    journal.reset();
  }

  // Converts `s` and, when it is a failure, remembers that `which` failed.
  // A write fails the database on any error; a read only on an I/O error (a
  // table file that cannot be opened), not on what it read.
  Status Note(Db which, const rocksdb::Status& s, bool write) {
    if (s.ok()) return Status::Ok();
    if (write || s.IsIOError()) {
      if (!failing[which].exchange(true)) {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (failure.empty()) failure = std::string(kDbNames[which]) + ": " + s.ToString();
      }
      any_failing.store(true, std::memory_order_release);
    }
    return FromRocks(s);
  }

  ~Rep() {
    CloseJournal();
    CloseState();
  }
};

struct Store::Checkpoint::Rep {
  explicit Rep(size_t expected_bytes) : batch(expected_bytes) {}
  Store::Rep* store;
  rocksdb::WriteBatch batch;
  // Users staged unsorted: key and value bytes back to back in `staged`.
  struct Staged {
    size_t offset;
    uint32_t key_size;
    uint32_t value_size;
  };
  std::string staged;
  std::vector<Staged> staged_users;
  // User index keys, likewise (they come in hash order, i.e. at random).
  std::string staged_index;
  std::vector<Staged> staged_index_keys;
};

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

Status Store::AppendLog(uint32_t shard, uint64_t seq, std::string_view block, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return rep_->Note(kJournalDb, rep_->journal->Put(wo, LogKey(shard, seq), S(block)), true);
}

Status Store::ScanLog(uint32_t shard, uint64_t after,
                      const std::function<Status(uint64_t, std::string_view)>& fn) {
  std::string lower = LogKey(shard, after + 1);
  std::string upper = LogKey(shard + 1, 0);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(rep_->journal->NewIterator(ro));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (k.size() != 12) return Status::Corruption("log: bad key");
    uint64_t seq = GetBe(std::string_view(k.data(), k.size()), 4, 8);
    Status st = fn(seq, std::string_view(it->value().data(), it->value().size()));
    if (!st.ok()) return st;
  }
  return rep_->Note(kJournalDb, it->status(), false);
}

Status Store::GetMeta(std::string_view key, std::string* value, bool* found) {
  rocksdb::Status s = rep_->db->Get(rocksdb::ReadOptions(), rep_->meta, S(key), value);
  *found = s.ok();
  if (s.IsNotFound()) return Status::Ok();
  return rep_->Note(kStateDb, s, false);
}

Status Store::PutMeta(std::string_view key, std::string_view value, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return rep_->Note(kStateDb, rep_->db->Put(wo, rep_->meta, S(key), S(value)), true);
}

namespace {
std::string UserKey(uint32_t shard, std::string_view user_id) {
  std::string k;
  k.reserve(4 + user_id.size());
  PutBe32(&k, shard);
  k.append(user_id);
  return k;
}
}  // namespace

namespace {
// In the meta column family, after a byte no meta name starts with.
constexpr char kUserIndexPrefix = '\x01';
std::string UserIndexPrefix(uint32_t shard, uint64_t hash) {
  std::string k;
  k.reserve(13);
  k.push_back(kUserIndexPrefix);
  PutBe32(&k, shard);
  PutBe64(&k, hash);
  return k;
}
}  // namespace

Status Store::FindUsersByHash(uint32_t shard, std::span<const uint64_t> hashes,
                              std::vector<std::string>* user_ids) {
  if (hashes.empty()) return Status::Ok();
  const std::string upper = UserIndexPrefix(shard + 1, 0);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(ro, rep_->meta));
  std::string prefix;
  for (const uint64_t hash : hashes) {
    prefix = UserIndexPrefix(shard, hash);
    // Sorted hashes: the iterator may already stand at (or past) this one.
    if (!it->Valid() || it->key().compare(prefix) < 0) it->Seek(prefix);
    for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
      user_ids->emplace_back(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    }
    if (!it->status().ok()) break;
  }
  return rep_->Note(kStateDb, it->status(), false);
}

Status Store::GetUser(uint32_t shard, std::string_view user_id, std::string* encoded, bool* found) {
  rocksdb::Status s =
      rep_->db->Get(rocksdb::ReadOptions(), rep_->users, UserKey(shard, user_id), encoded);
  *found = s.ok();
  if (s.IsNotFound()) return Status::Ok();
  return rep_->Note(kStateDb, s, false);
}

Status Store::ScanUsers(uint32_t shard, std::string_view after,
                        const std::function<bool(std::string_view, std::string_view)>& fn) {
  std::string lower = UserKey(shard, after);
  std::string upper;
  PutBe32(&upper, shard + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(ro, rep_->users));
  it->Seek(lower);
  if (!after.empty() && it->Valid() && it->key() == rocksdb::Slice(lower)) it->Next();
  for (; it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (k.size() < 4) return Status::Corruption("users: bad key");
    if (!fn(std::string_view(k.data() + 4, k.size() - 4),
            std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return rep_->Note(kStateDb, it->status(), false);
}

Status Store::ScanSeen(uint32_t shard, const std::function<Status(int32_t, std::string_view)>& fn) {
  std::string lower;
  PutBe32(&lower, shard);
  std::string upper;
  PutBe32(&upper, shard + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(ro, rep_->seen));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (k.size() != 16) return Status::Corruption("seen: bad key");
    int32_t day =
        UnbiasDay(static_cast<uint32_t>(GetBe(std::string_view(k.data(), k.size()), 4, 4)));
    Status st = fn(day, std::string_view(it->value().data(), it->value().size()));
    if (!st.ok()) return st;
  }
  return rep_->Note(kStateDb, it->status(), false);
}

Status Store::ReadIdBlock(uint32_t shard, uint64_t run, uint32_t block, std::string* bytes) {
  rocksdb::Status s =
      rep_->db->Get(rocksdb::ReadOptions(), rep_->idruns, IdBlockKey(shard, run, block), bytes);
  if (s.IsNotFound()) return Status::Corruption("id run block missing");
  return rep_->Note(kStateDb, s, false);
}

Status Store::ScanIdRuns(uint32_t shard, const std::function<Status(std::string_view)>& fn) {
  const std::string lower = IdRunKey(shard, 0);
  std::string upper;
  PutBe32(&upper, shard);
  upper.push_back('\1');
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(ro, rep_->idruns));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    Status st = fn(std::string_view(it->value().data(), it->value().size()));
    if (!st.ok()) return st;
  }
  return rep_->Note(kStateDb, it->status(), false);
}

Store::Checkpoint::Checkpoint(Store* store, size_t expected_bytes)
    : rep_(std::make_unique<Rep>(expected_bytes)) {
  rep_->staged.reserve(expected_bytes);
  rep_->store = store->rep_.get();
}
Store::Checkpoint::~Checkpoint() = default;

void Store::Checkpoint::PutUser(uint32_t shard, std::string_view user_id,
                                std::string_view encoded) {
  rep_->batch.Put(rep_->store->users, UserKey(shard, user_id), S(encoded));
}
void Store::Checkpoint::StageUser(uint32_t shard, std::string_view user_id,
                                  std::string_view encoded) {
  const size_t offset = rep_->staged.size();
  PutBe32(&rep_->staged, shard);
  rep_->staged.append(user_id);
  rep_->staged.append(encoded);
  rep_->staged_users.push_back(
      {offset, static_cast<uint32_t>(4 + user_id.size()), static_cast<uint32_t>(encoded.size())});
}

void Store::Checkpoint::PutMeta(std::string_view key, std::string_view value) {
  rep_->batch.Put(rep_->store->meta, S(key), S(value));
}
void Store::Checkpoint::PutUserIndex(uint32_t shard, uint64_t hash, std::string_view user_id) {
  const size_t offset = rep_->staged_index.size();
  rep_->staged_index.append(UserIndexPrefix(shard, hash));
  rep_->staged_index.append(user_id);
  rep_->staged_index_keys.push_back(
      {offset, static_cast<uint32_t>(rep_->staged_index.size() - offset), 0});
}
void Store::Checkpoint::PutSeen(uint32_t shard, int32_t day, uint64_t sub,
                                std::string_view packed) {
  rep_->batch.Put(rep_->store->seen, SeenKey(shard, day, sub), S(packed));
}
Status Store::TrimLog(uint32_t shard, uint64_t seq) {
  rocksdb::WriteOptions wo;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return rep_->Note(kJournalDb,
                    rep_->journal->DeleteRange(wo, rep_->journal->DefaultColumnFamily(),
                                               LogKey(shard, 0), LogKey(shard, seq + 1)),
                    true);
}
void Store::Checkpoint::DeleteAllSeen(uint32_t shard) {
  rep_->batch.DeleteRange(rep_->store->seen, SeenKey(shard, INT32_MIN, 0),
                          SeenKey(shard + 1, INT32_MIN, 0));
}

void Store::Checkpoint::PutIdBlock(uint32_t shard, uint64_t run, uint32_t block,
                                   std::string_view bytes) {
  rep_->batch.Put(rep_->store->idruns, IdBlockKey(shard, run, block), S(bytes));
}

void Store::Checkpoint::PutIdRun(uint32_t shard, uint64_t run, std::string_view descriptor) {
  rep_->batch.Put(rep_->store->idruns, IdRunKey(shard, run), S(descriptor));
}

void Store::Checkpoint::DeleteIdRun(uint32_t shard, uint64_t run) {
  rep_->batch.Delete(rep_->store->idruns, IdRunKey(shard, run));
  rep_->batch.DeleteRange(rep_->store->idruns, IdBlockKey(shard, run, 0),
                          IdBlockKey(shard, run + 1, 0));
}

void Store::Checkpoint::DeleteSeenUpTo(uint32_t shard, int32_t day, uint64_t sub) {
  rep_->batch.DeleteRange(
      rep_->store->seen, SeenKey(shard, day, 0),
      sub == UINT64_MAX ? SeenKey(shard, day + 1, 0) : SeenKey(shard, day, sub + 1));
}

Status Store::DeleteIdBlocksFrom(uint32_t shard, uint64_t run) {
  rocksdb::WriteOptions wo;
  TIERSTREAM_TSAN_WRITE_LOCK;
  std::string end;  // past every block key of the shard (shard | 1 | ...)
  PutBe32(&end, shard);
  end.push_back('\2');
  return rep_->Note(kStateDb,
                    rep_->db->DeleteRange(wo, rep_->idruns, IdBlockKey(shard, run, 0), end), true);
}

void Store::Checkpoint::DeleteSeenBefore(uint32_t shard, int32_t day) {
  rep_->batch.DeleteRange(rep_->store->seen, SeenKey(shard, INT32_MIN, 0), SeenKey(shard, day, 0));
}
size_t Store::Checkpoint::ApproximateBytes() const {
  return rep_->batch.GetDataSize() + rep_->staged.size() + rep_->staged_index.size();
}

Status Store::Commit(Checkpoint* checkpoint, bool sync) {
  // Staged users go in key order: RocksDB's memtable inserts sorted keys far
  // faster than random ones.
  auto& rep = *checkpoint->rep_;
  if (!rep.staged_users.empty()) {
    const char* base = rep.staged.data();
    std::sort(rep.staged_users.begin(), rep.staged_users.end(),
              [base](const Checkpoint::Rep::Staged& a, const Checkpoint::Rep::Staged& b) {
                return std::string_view(base + a.offset, a.key_size) <
                       std::string_view(base + b.offset, b.key_size);
              });
    for (const auto& u : rep.staged_users) {
      rep.batch.Put(rep_->users, rocksdb::Slice(base + u.offset, u.key_size),
                    rocksdb::Slice(base + u.offset + u.key_size, u.value_size));
    }
    rep.staged_users.clear();
    rep.staged.clear();
  }
  if (!rep.staged_index_keys.empty()) {
    const char* base = rep.staged_index.data();
    std::sort(rep.staged_index_keys.begin(), rep.staged_index_keys.end(),
              [base](const Checkpoint::Rep::Staged& a, const Checkpoint::Rep::Staged& b) {
                return std::string_view(base + a.offset, a.key_size) <
                       std::string_view(base + b.offset, b.key_size);
              });
    for (const auto& k : rep.staged_index_keys) {
      rep.batch.Put(rep_->meta, rocksdb::Slice(base + k.offset, k.key_size), rocksdb::Slice());
    }
    rep.staged_index_keys.clear();
    rep.staged_index.clear();
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return rep_->Note(kStateDb, rep_->db->Write(wo, &checkpoint->rep_->batch), true);
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

Status Store::DeleteLogAfter(uint32_t shard, uint64_t seq) {
  if (seq == UINT64_MAX) return Status::Ok();
  rocksdb::WriteOptions wo;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return rep_->Note(kJournalDb,
                    rep_->journal->DeleteRange(wo, rep_->journal->DefaultColumnFamily(),
                                               LogKey(shard, seq + 1), LogKey(shard + 1, 0)),
                    true);
}

}  // namespace tierstream::state
