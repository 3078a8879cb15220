// Store: tierstream's RocksDB database — the only module that includes
// RocksDB headers.
//
// Column families:
//   default  meta, keys chosen by the pipeline: "shards" -> shard count,
//            "tz" -> the UTC offset days are cut by, "rules" -> the tier
//            rules last applied, "shard/<i>" -> ShardState meta (with its
//            log position), "user_index/<i>" -> the stamp saying shard i's
//            user index is complete, "consumer/<name>" -> the position of a
//            feed consumer the server runs (a webhook: server/webhooks.h);
//            user index: key 0x01 | shard(4B BE) | hash(8B BE) | user_id -> ""
//            (the users of a hash: pending tier checks of evicted users are
//            kept by hash; older binaries never read these keys)
//   users    key shard(4B BE) | user_id -> encoded UserState (per shard, in id order)
//   seen     key shard(4B) | biased day(4B) | sub(8B) -> packed 16-byte event id hashes
//   idruns   key shard(4B) | 0 | run(8B) -> IdRun descriptor (filter, fences)
//            key shard(4B) | 1 | run(8B) | block(4B) -> sorted (hash, day) entries
// The journal, a second database in DIR/journal, holds the event log:
//   key shard(4B BE) | seq(8B BE) -> a block of encoded events that was made
//   durable before it was acknowledged (write-ahead of state).
// The journal's "changes" family holds the change feed:
//   key 'c' | cursor(8B BE) -> a record of up to 512 encoded TierChanges
//            (tier_change.h) of one write, with consecutive cursors from this one
//   key 'p' | shard(4B BE)  -> the shard_seq of the shard's last change written
//   key 't'                 -> the cursor the feed was trimmed through (retention)
// A shard's time changes go into the log in the same write as their feed
// records (AppendChanges), so that replay makes them again.
// A Checkpoint gathers dirty users, shard meta (with the log position it
// covers) and new seen ids into one atomic WriteBatch; the log it covers is
// trimmed afterwards (what is left below the position is never replayed).
//
// Failures: RocksDB answers most I/O errors of a write (a WAL or table file
// that cannot be created — "Too many open files", a full disk) by refusing
// every later write of that database: a background error, of fatal severity
// when a file could not be created, which DB::Resume() does not clear
// (RocksDB 7.8). The store remembers which database failed (failing()) until
// Recover() has brought it back, by Resume() or by closing and opening it
// again; nothing acknowledged is lost (the WAL is replayed).
//
// File descriptors: each database's table cache is bounded (max_open_files),
// so the store holds at most kStoreMaxFds descriptors however large the data
// grows (a server budgets them against RLIMIT_NOFILE with its connections).
//
// Thread safety: thread-safe (RocksDB's own guarantees), but for Recover();
// a Checkpoint object is confined.
#ifndef TIERSTREAM_STATE_STORE_H_
#define TIERSTREAM_STATE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tierstream::state {

// Tables each database keeps open (RocksDB's max_open_files: its table cache
// holds 10 fewer). The state database's 128 cover about 7 GB of tables of
// 64 MB before one must be reopened on a read; the journal is trimmed behind
// every checkpoint and holds a few.
inline constexpr int kStateMaxOpenFiles = 128;
inline constexpr int kJournalMaxOpenFiles = 32;
// What a database holds open beside its tables: its WALs, MANIFEST, LOCK,
// info LOG and directories, the outputs of flushes and compactions, and the
// input tables a compaction pins beyond the cache.
inline constexpr int kFilesBesideTables = 48;
// The most descriptors the store holds open (256).
inline constexpr int kStoreMaxFds =
    kStateMaxOpenFiles + kJournalMaxOpenFiles + 2 * kFilesBesideTables;
// Free descriptors needed to open a database again (Recover()): what it
// holds beside its tables, and the tables it loads at open.
inline constexpr int kStoreReopenFds = 2 * kFilesBesideTables + kStateMaxOpenFiles / 4;

// RocksDB's own figures of one database (GET /metrics). The stall figures
// count since the database was opened (a reopen by Recover() starts them
// again).
struct DbFigures {
  uint64_t memtable_bytes = 0;            // every family's memtables, active and immutable
  uint64_t pending_compaction_bytes = 0;  // RocksDB's estimate of what compaction must rewrite
  uint64_t live_sst_bytes = 0;            // table files of the current version
  uint64_t write_stall_micros = 0;        // time writers spent delayed or stopped
  uint64_t write_slowdowns = 0;           // writes delayed, over every family
  uint64_t write_stops = 0;               // writes stopped, over every family
};
struct StoreFigures {
  DbFigures journal;
  DbFigures state;
};

struct StoreOptions {
  bool create_if_missing = true;
  size_t block_cache_bytes = 256u << 20;
  size_t write_buffer_bytes = 64u << 20;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends one block to a shard's log. With sync, fsyncs the WAL (RocksDB
  // groups concurrent syncing writers into one fsync).
  Status AppendLog(uint32_t shard, uint64_t seq, std::string_view block, bool sync);
  // Calls fn(seq, block) for each log block of `shard` with seq > after, in order.
  Status ScanLog(uint32_t shard, uint64_t after,
                 const std::function<Status(uint64_t, std::string_view)>& fn);

  // ---- the change feed
  // A block of a shard's log to write with changes (none when empty).
  struct LogAppend {
    uint64_t seq = 0;
    std::string_view block;
  };
  // In one atomic write: `time_block`, then `events_block` (the group the
  // changes came before), as blocks of `shard`'s log, the encoded changes
  // `values` under the cursors first_cursor, first_cursor + 1, ..., and
  // `shard_seq` as the shard's position.
  Status AppendChanges(uint32_t shard, LogAppend time_block, LogAppend events_block,
                       uint64_t first_cursor, const std::vector<std::string>& values,
                       uint64_t shard_seq, bool sync);
  // The shard_seq of the shard's last change in the feed (0: none).
  Status GetChangePosition(uint32_t shard, uint64_t* shard_seq);
  // The largest cursor written (0: none) and the cursor the feed was
  // trimmed through (0: never).
  Status GetChangeBounds(uint64_t* last, uint64_t* trimmed);
  // Calls fn(cursor, encoded) for the changes with after < cursor < before,
  // in order, until fn returns false.
  Status ScanChanges(uint64_t after, uint64_t before,
                     const std::function<bool(uint64_t, std::string_view)>& fn);
  // Deletes the changes through `cursor`, or fewer: the records wholly at or
  // before it (a record holds up to 512 changes of one write). Sets
  // *trimmed to the last cursor deleted (0: none) and records it.
  Status TrimChanges(uint64_t cursor, uint64_t* trimmed);
  // Approximate bytes of the feed on disk and in memtables.
  uint64_t ChangesBytes();

  Status GetMeta(std::string_view key, std::string* value, bool* found);
  Status PutMeta(std::string_view key, std::string_view value, bool sync);
  Status GetUser(uint32_t shard, std::string_view user_id, std::string* encoded, bool* found);
  // Appends to *user_ids the ids of `shard`'s users indexed under one of
  // `hashes` (sorted; Checkpoint::PutUserIndex), in (hash, id) order: one
  // iterator seeks forward through them.
  Status FindUsersByHash(uint32_t shard, std::span<const uint64_t> hashes,
                         std::vector<std::string>* user_ids);
  // Calls fn(user_id, encoded) for the users of `shard` with id > `after`,
  // in id order, until fn returns false.
  Status ScanUsers(uint32_t shard, std::string_view after,
                   const std::function<bool(std::string_view, std::string_view)>& fn);
  Status ScanSeen(uint32_t shard, const std::function<Status(int32_t, std::string_view)>& fn);
  Status ReadIdBlock(uint32_t shard, uint64_t run, uint32_t block, std::string* bytes);
  // Calls fn(descriptor) for each id run of `shard`.
  Status ScanIdRuns(uint32_t shard, const std::function<Status(std::string_view)>& fn);

  class Checkpoint {
   public:
    // `expected_bytes`: about what it will hold, and `expected_users`: at
    // most how many users (and index keys) it stages, so that its buffers are
    // sized once instead of doubling (and copying) their way there.
    explicit Checkpoint(Store* store, size_t expected_bytes = 0, size_t expected_users = 0);
    ~Checkpoint();
    void PutUser(uint32_t shard, std::string_view user_id, std::string_view encoded);
    // The same, in any order: Commit sorts staged users by key (on the
    // committing thread) before writing them.
    void StageUser(uint32_t shard, std::string_view user_id, std::string_view encoded);
    void PutMeta(std::string_view key, std::string_view value);
    // Indexes a user under her hash (idempotent). Staged like StageUser:
    // Commit sorts them.
    void PutUserIndex(uint32_t shard, uint64_t hash, std::string_view user_id);
    void PutSeen(uint32_t shard, int32_t day, uint64_t sub, std::string_view packed);
    void DeleteSeenBefore(uint32_t shard, int32_t day);
    void DeleteAllSeen(uint32_t shard);
    // Deletes the seen blobs of `day` numbered up to `sub`.
    void DeleteSeenUpTo(uint32_t shard, int32_t day, uint64_t sub);
    void PutIdBlock(uint32_t shard, uint64_t run, uint32_t block, std::string_view bytes);
    void PutIdRun(uint32_t shard, uint64_t run, std::string_view descriptor);
    void DeleteIdRun(uint32_t shard, uint64_t run);
    size_t ApproximateBytes() const;

   private:
    friend class Store;
    struct Rep;
    std::unique_ptr<Rep> rep_;
  };
  Status Commit(Checkpoint* checkpoint, bool sync);

  // ---- shard images (the Kafka mode's changelog: state that can move)
  // What a committed checkpoint of `shard` wrote, as chunks of at most about
  // `max_bytes` each (a portable encoding of its puts, deletes and range
  // deletes, independent of RocksDB's), for another store to apply in
  // order. REQUIRES: `checkpoint` was committed and holds only `shard`'s
  // keys, the meta keys among `meta_keys` included.
  static Status ExportImage(const Checkpoint& checkpoint, size_t max_bytes,
                            std::vector<std::string>* chunks);
  // Applies one chunk of ExportImage of `shard` (not synced: the caller
  // syncs with its last write). A chunk that is not well formed, or touches
  // a key that is not `shard`'s (`meta_keys` are its meta keys), is
  // refused whole: Corruption.
  Status ApplyImage(uint32_t shard, const std::vector<std::string>& meta_keys,
                    std::string_view chunk);
  // The whole of `shard` as ExportImage chunks (puts only, to apply after a
  // WipeShard): its users, user index, seen ids, id runs and `meta_keys`.
  Status ExportShard(uint32_t shard, const std::vector<std::string>& meta_keys, size_t max_bytes,
                     std::vector<std::string>* chunks);
  // Deletes everything of `shard`: its users, user index, seen ids, id runs,
  // log and change-feed position, and `meta_keys`; synced.
  Status WipeShard(uint32_t shard, const std::vector<std::string>& meta_keys);
  // Deletes the log of `shard` through `seq` (after a checkpoint covering it).
  Status TrimLog(uint32_t shard, uint64_t seq);
  // Deletes the id blocks of runs numbered `run` and up (orphans: blocks
  // written by a spill whose descriptor never committed).
  Status DeleteIdBlocksFrom(uint32_t shard, uint64_t run);

  // RocksDB's figures of both databases (integer properties; a few
  // microseconds). A figure RocksDB cannot give reads 0.
  StoreFigures Figures();

  // True while a database has failed (a write, or a read of a table file,
  // returned an I/O error) and Recover() has not brought it back. Cheap.
  bool failing() const;
  // The first failure since the store was last healthy, e.g. "journal: IO
  // error: While open a file for appending: ...: Too many open files"; empty
  // when not failing().
  std::string failure() const;
  // Brings the failing databases back: DB::Resume(), and where that cannot
  // clear the error, closes the database and opens it again (its WAL is
  // replayed). *reopened says whether one was reopened. On error the store
  // is still failing; if it closed a database it could not open again, the
  // store is unusable (*unusable): no other call may be made on it.
  // REQUIRES: no other call on this Store is in progress or starts until it
  // returns (the caller quiesces every thread that uses it).
  Status Recover(bool* reopened, bool* unusable);
  // Deletes the log of `shard` after `seq`: a write that returned an error
  // may still have left its block, and it was never acknowledged.
  Status DeleteLogAfter(uint32_t shard, uint64_t seq);

 private:
  struct Rep;
  explicit Store(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_STORE_H_
