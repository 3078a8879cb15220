// The change feed, in the journal database's "changes" family: records of
// up to kChangesPerRecord changes with consecutive cursors, each under the
// cursor of its first (one key per change would cost a memtable insert and
// a key each: a tenth of a replay's time), each shard's position, and the
// trim point of retention (see store.h for the keys).
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

#include "common/varint.h"
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

namespace {

// A record: kRecordTag, varint count, then count times (varint size,
// encoded TierChange). A value that starts with anything else is a single
// encoded change (the feed's first format).
constexpr char kRecordTag = '\xB7';
constexpr size_t kChangesPerRecord = 512;

// The changes of one record, with their cursors.
class RecordReader {
 public:
  RecordReader(uint64_t first_cursor, std::string_view value) : cursor_(first_cursor) {
    if (!value.empty() && value[0] == kRecordTag) {
      value.remove_prefix(1);
      ok_ = GetVarint64(&value, &left_);
      rest_ = value;
    } else {
      single_ = value;
      left_ = 1;
    }
  }
  bool ok() const { return ok_; }
  // The cursor of the record's last change.
  uint64_t last_cursor() const { return cursor_ + left_ - 1; }
  // The next change, false at the end (ok() tells whether it was clean).
  bool Next(uint64_t* cursor, std::string_view* change) {
    if (!ok_ || left_ == 0) return false;
    if (!single_.empty()) {
      *change = single_;
    } else {
      uint64_t n = 0;
      if (!GetVarint64(&rest_, &n) || n > rest_.size()) {
        ok_ = false;
        return false;
      }
      *change = rest_.substr(0, n);
      rest_.remove_prefix(n);
    }
    *cursor = cursor_++;
    --left_;
    return true;
  }

 private:
  uint64_t cursor_;
  uint64_t left_ = 0;
  std::string_view rest_;
  std::string_view single_;
  bool ok_ = true;
};

Status BadRecord() { return Status::Corruption("change feed: bad record"); }

uint64_t KeyCursor(const rocksdb::Slice& k) {
  return GetBe(std::string_view(k.data(), k.size()), 1, 8);
}

}  // namespace

Status Store::AppendChanges(uint32_t shard, LogAppend time_block, LogAppend events_block,
                            uint64_t first_cursor, const std::vector<std::string>& values,
                            uint64_t shard_seq, bool sync) {
  rocksdb::WriteBatch batch;
  Rep& r = *rep_;
  for (const LogAppend& log : {time_block, events_block}) {
    if (!log.block.empty()) {
      batch.Put(r.journal->DefaultColumnFamily(), LogKey(shard, log.seq), S(log.block));
    }
  }
  std::string record;
  for (size_t i = 0; i < values.size(); i += kChangesPerRecord) {
    const size_t n = std::min(kChangesPerRecord, values.size() - i);
    record.clear();
    record.push_back(kRecordTag);
    PutVarint64(&record, n);
    for (size_t j = i; j < i + n; ++j) {
      PutVarint64(&record, values[j].size());
      record.append(values[j]);
    }
    batch.Put(r.changes, ChangeKey(first_cursor + i), record);
  }
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
    RecordReader record(KeyCursor(k), std::string_view(it->value().data(), it->value().size()));
    if (!record.ok()) return BadRecord();
    *last = record.last_cursor();
  }
  *last = std::max(*last, *trimmed);
  return rep_->Note(kJournalDb, it->status(), false);
}

Status Store::ScanChanges(uint64_t after, uint64_t before,
                          const std::function<bool(uint64_t, std::string_view)>& fn) {
  if (before <= after + 1) return Status::Ok();
  const std::string lower = ChangeKey(0);
  const std::string upper = ChangeKey(before);
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(rep_->journal->NewIterator(ro, rep_->changes));
  // The record that holds after + 1 starts at or before it.
  it->SeekForPrev(ChangeKey(after + 1));
  if (!it->Valid()) it->Seek(lower);
  for (; it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (k.size() != 9) return Status::Corruption("change feed: bad key");
    RecordReader record(KeyCursor(k), std::string_view(it->value().data(), it->value().size()));
    uint64_t cursor;
    std::string_view change;
    while (record.Next(&cursor, &change)) {
      if (cursor <= after) continue;
      if (cursor >= before || !fn(cursor, change)) return Status::Ok();
    }
    if (!record.ok()) return BadRecord();
  }
  return rep_->Note(kJournalDb, it->status(), false);
}

Status Store::TrimChanges(uint64_t cursor, uint64_t* trimmed) {
  Rep& r = *rep_;
  // Whole records only: through the last that ends by `cursor`.
  *trimmed = 0;
  {
    const std::string lower = ChangeKey(0);
    const std::string upper = ChangeKey(cursor + 1);
    rocksdb::Slice lower_slice(lower), upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_slice;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(r.journal->NewIterator(ro, r.changes));
    for (it->Seek(lower); it->Valid(); it->Next()) {
      RecordReader record(KeyCursor(it->key()),
                          std::string_view(it->value().data(), it->value().size()));
      if (!record.ok()) return BadRecord();
      if (record.last_cursor() > cursor) break;
      *trimmed = record.last_cursor();
    }
    Status s = r.Note(kJournalDb, it->status(), false);
    if (!s.ok()) return s;
  }
  if (*trimmed == 0) return Status::Ok();
  rocksdb::WriteBatch batch;
  batch.DeleteRange(r.changes, ChangeKey(0), ChangeKey(*trimmed + 1));
  std::string v;
  PutBe64(&v, *trimmed);
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
