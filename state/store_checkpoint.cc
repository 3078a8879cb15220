// A checkpoint's one atomic WriteBatch: users and user-index keys staged in
// any order and sorted at Commit (on the committer's thread), shard metas,
// seen blobs, and id runs written or deleted.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
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

Store::Checkpoint::Checkpoint(Store* store, size_t expected_bytes, size_t expected_users)
    : rep_(std::make_unique<Rep>(expected_bytes, expected_users)) {
  rep_->store = store->rep_.get();
}
Store::Checkpoint::~Checkpoint() = default;

void Store::Checkpoint::PutUser(uint32_t shard, std::string_view user_id,
                                std::string_view encoded) {
  rep_->batch.Put(rep_->store->users, UserKey(shard, user_id), S(encoded));
}
void Store::Checkpoint::StageUser(uint32_t shard, std::string_view user_id,
                                  std::string_view encoded) {
  const size_t key_size = 4 + user_id.size();
  char* p = rep_->staged_bytes.Allocate(key_size + encoded.size());
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(shard >> (8 * (3 - i)));  // as PutBe32
  std::memcpy(p + 4, user_id.data(), user_id.size());
  std::memcpy(p + key_size, encoded.data(), encoded.size());
  rep_->staged_size += key_size + encoded.size();
  rep_->staged_users.push_back(
      {p, static_cast<uint32_t>(key_size), static_cast<uint32_t>(encoded.size())});
}

void Store::Checkpoint::PutMeta(std::string_view key, std::string_view value) {
  rep_->batch.Put(rep_->store->meta, S(key), S(value));
}
void Store::Checkpoint::PutUserIndex(uint32_t shard, uint64_t hash, std::string_view user_id) {
  const std::string prefix = UserIndexPrefix(shard, hash);
  char* p = rep_->staged_bytes.Allocate(prefix.size() + user_id.size());
  std::memcpy(p, prefix.data(), prefix.size());
  std::memcpy(p + prefix.size(), user_id.data(), user_id.size());
  rep_->staged_size += prefix.size() + user_id.size();
  rep_->staged_index_keys.push_back({p, static_cast<uint32_t>(prefix.size() + user_id.size()), 0});
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
  return rep_->batch.GetDataSize() + rep_->staged_size;
}

Status Store::Commit(Checkpoint* checkpoint, bool sync) {
  // Staged users go in key order: RocksDB's memtable inserts sorted keys far
  // faster than random ones.
  auto& rep = *checkpoint->rep_;
  using Staged = Checkpoint::Rep::Staged;
  auto by_key = [](const Staged& a, const Staged& b) {
    return std::string_view(a.data, a.key_size) < std::string_view(b.data, b.key_size);
  };
  std::sort(rep.staged_users.begin(), rep.staged_users.end(), by_key);
  for (const Staged& u : rep.staged_users) {
    rep.batch.Put(rep_->users, rocksdb::Slice(u.data, u.key_size),
                  rocksdb::Slice(u.data + u.key_size, u.value_size));
  }
  std::sort(rep.staged_index_keys.begin(), rep.staged_index_keys.end(), by_key);
  for (const Staged& k : rep.staged_index_keys) {
    rep.batch.Put(rep_->meta, rocksdb::Slice(k.data, k.key_size), rocksdb::Slice());
  }
  rep.staged_users.clear();
  rep.staged_index_keys.clear();
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return rep_->Note(kStateDb, rep_->db->Write(wo, &checkpoint->rep_->batch), true);
}

}  // namespace tierstream::state
