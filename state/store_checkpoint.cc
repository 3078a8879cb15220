// A checkpoint's one atomic WriteBatch: users and user-index keys staged in
// any order and sorted at Commit (on the committer's thread), shard metas,
// seen blobs, and id runs written or deleted.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

#include "state/store.h"
#include "state/store_impl.h"

namespace tierstream::state {

using store_internal::IdBlockKey;
using store_internal::IdRunKey;
using store_internal::kStateDb;
using store_internal::PutBe32;
using store_internal::S;
using store_internal::SeenKey;
using store_internal::UserIndexPrefix;
using store_internal::UserKey;

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

}  // namespace tierstream::state
