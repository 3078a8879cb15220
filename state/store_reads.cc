// The state database outside checkpoints: point reads on the hot path (a
// user, an id block, a meta), the scans recovery loads a shard from (users,
// the user index, seen blobs, id runs), and its two direct writes (a meta,
// and the deletion of orphaned id blocks at recovery).
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>

#include <memory>

#include "state/store.h"
#include "state/store_impl.h"

namespace tierstream::state {

using store_internal::GetBe;
using store_internal::IdBlockKey;
using store_internal::IdRunKey;
using store_internal::kStateDb;
using store_internal::PutBe32;
using store_internal::S;
using store_internal::UnbiasDay;
using store_internal::UserIndexPrefix;
using store_internal::UserKey;

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
    RETURN_IF_ERROR(fn(day, std::string_view(it->value().data(), it->value().size())));
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
    RETURN_IF_ERROR(fn(std::string_view(it->value().data(), it->value().size())));
  }
  return rep_->Note(kStateDb, it->status(), false);
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

}  // namespace tierstream::state
