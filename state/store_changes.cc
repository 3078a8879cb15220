// The change feed, in the journal database's "changes" family: records
// under their cursors, each shard's position, and the trim point of
// retention (see store.h for the keys).
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

#include "state/store.h"
#include "state/store_impl.h"

namespace tierstream::state {

using store_internal::ChangeKey;
using store_internal::ChangePositionKey;
using store_internal::GetBe;
using store_internal::kChangeRecordPrefix;
using store_internal::kChangesTrimmedKey;
using store_internal::kJournalDb;
using store_internal::LogKey;
using store_internal::PutBe64;
using store_internal::S;

Status Store::AppendChanges(uint32_t shard, uint64_t log_seq, std::string_view block,
                            uint64_t first_cursor, const std::vector<std::string>& values,
                            uint64_t shard_seq, bool sync) {
  rocksdb::WriteBatch batch;
  Rep& r = *rep_;
  if (!block.empty()) batch.Put(r.journal->DefaultColumnFamily(), LogKey(shard, log_seq), S(block));
  uint64_t cursor = first_cursor;
  for (const std::string& v : values) batch.Put(r.changes, ChangeKey(cursor++), S(v));
  std::string pos;
  PutBe64(&pos, shard_seq);
  batch.Put(r.changes, ChangePositionKey(shard), pos);
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return r.Note(kJournalDb, r.journal->Write(wo, &batch), true);
}

Status Store::GetChangePosition(uint32_t shard, uint64_t* shard_seq) {
  std::string v;
  rocksdb::Status s =
      rep_->journal->Get(rocksdb::ReadOptions(), rep_->changes, ChangePositionKey(shard), &v);
  *shard_seq = 0;
  if (s.IsNotFound()) return Status::Ok();
  if (s.ok() && v.size() != 8) return Status::Corruption("change feed: bad shard position");
  if (s.ok()) *shard_seq = GetBe(v, 0, 8);
  return rep_->Note(kJournalDb, s, false);
}

Status Store::GetChangeBounds(uint64_t* last, uint64_t* trimmed) {
  *last = 0;
  *trimmed = 0;
  std::string v;
  rocksdb::Status s =
      rep_->journal->Get(rocksdb::ReadOptions(), rep_->changes, kChangesTrimmedKey, &v);
  if (s.ok() && v.size() == 8) {
    *trimmed = GetBe(v, 0, 8);
  } else if (!s.ok() && !s.IsNotFound()) {
    return rep_->Note(kJournalDb, s, false);
  }
  const std::string upper(1, static_cast<char>(kChangeRecordPrefix + 1));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(rep_->journal->NewIterator(ro, rep_->changes));
  it->SeekToLast();
  if (it->Valid()) {
    rocksdb::Slice k = it->key();
    if (k.size() != 9 || k[0] != kChangeRecordPrefix)
      return Status::Corruption("change feed: bad key");
    *last = GetBe(std::string_view(k.data(), k.size()), 1, 8);
  }
  *last = std::max(*last, *trimmed);
  return rep_->Note(kJournalDb, it->status(), false);
}

Status Store::ScanChanges(uint64_t after, uint64_t before,
                          const std::function<bool(uint64_t, std::string_view)>& fn) {
  if (before <= after + 1) return Status::Ok();
  const std::string lower = ChangeKey(after + 1);
  const std::string upper = ChangeKey(before);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(rep_->journal->NewIterator(ro, rep_->changes));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (k.size() != 9) return Status::Corruption("change feed: bad key");
    const uint64_t cursor = GetBe(std::string_view(k.data(), k.size()), 1, 8);
    if (!fn(cursor, std::string_view(it->value().data(), it->value().size()))) break;
  }
  return rep_->Note(kJournalDb, it->status(), false);
}

Status Store::TrimChanges(uint64_t cursor) {
  rocksdb::WriteBatch batch;
  Rep& r = *rep_;
  batch.DeleteRange(r.changes, ChangeKey(0), ChangeKey(cursor + 1));
  std::string v;
  PutBe64(&v, cursor);
  batch.Put(r.changes, kChangesTrimmedKey, v);
  rocksdb::WriteOptions wo;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return r.Note(kJournalDb, r.journal->Write(wo, &batch), true);
}

uint64_t Store::ChangesBytes() {
  const std::string lo = ChangeKey(0);
  const std::string hi = ChangeKey(UINT64_MAX);
  rocksdb::Range range(lo, hi);
  uint64_t bytes = 0;
  rocksdb::SizeApproximationOptions o;
  o.include_memtables = true;
  o.include_files = true;
  (void)rep_->journal->GetApproximateSizes(o, rep_->changes, &range, 1, &bytes);
  return bytes;
}

}  // namespace tierstream::state
