// The event log, in the journal database: appends made durable before an
// answer, the scan recovery replays, and the deletes behind a checkpoint
// (TrimLog) and of blocks never acknowledged (DeleteLogAfter).
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>

#include <memory>

#include "state/store.h"
#include "state/store_impl.h"

namespace tierstream::state {

using store_internal::GetBe;
using store_internal::kJournalDb;
using store_internal::LogKey;
using store_internal::S;

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
    RETURN_IF_ERROR(fn(seq, std::string_view(it->value().data(), it->value().size())));
  }
  return rep_->Note(kJournalDb, it->status(), false);
}

Status Store::TrimLog(uint32_t shard, uint64_t seq) {
  rocksdb::WriteOptions wo;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return rep_->Note(kJournalDb,
                    rep_->journal->DeleteRange(wo, rep_->journal->DefaultColumnFamily(),
                                               LogKey(shard, 0), LogKey(shard, seq + 1)),
                    true);
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
