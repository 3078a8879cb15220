// Shard images (store.h "shard images"): a committed checkpoint's write
// batch re-encoded op by op, so that another store can apply it, and the
// wiping of a shard before an image is applied.
//
// A chunk is a sequence of ops, each
//   kind (1: put, 2: delete, 3: delete range) | family (0: meta, 1: users,
//   2: seen, 3: idruns) | varint key size | key | varint value size | value
// (a range delete's "value" is its end key; a delete has none).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "common/varint.h"
#include "state/store.h"
#include "state/store_impl.h"

namespace tierstream::state {

using store_internal::kJournalDb;
using store_internal::kStateDb;
using store_internal::LogKey;
using store_internal::PutBe32;
using store_internal::S;

namespace {

enum OpKind : uint8_t { kPut = 1, kDelete = 2, kDeleteRange = 3 };
constexpr uint8_t kFamilies = 4;

// Re-encodes a write batch's ops, cutting a chunk at `max_bytes`.
class Exporter final : public rocksdb::WriteBatch::Handler {
 public:
  // `family_ids`: the RocksDB ids of meta, users, seen and idruns.
  Exporter(const uint32_t (&family_ids)[kFamilies], size_t max_bytes,
           std::vector<std::string>* chunks)
      : max_bytes_(max_bytes), chunks_(chunks) {
    std::copy(family_ids, family_ids + kFamilies, family_ids_);
  }

  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    return Add(kPut, cf, key, &value);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    return Add(kDelete, cf, key, nullptr);
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    return Add(kDeleteRange, cf, begin, &end);
  }
  rocksdb::Status SingleDeleteCF(uint32_t, const rocksdb::Slice&) override {
    return rocksdb::Status::NotSupported("single delete in a checkpoint");
  }
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::NotSupported("merge in a checkpoint");
  }
  void LogData(const rocksdb::Slice&) override {}

  void Finish() {
    if (!chunk_.empty()) chunks_->push_back(std::move(chunk_));
    chunk_.clear();
  }

 private:
  rocksdb::Status Add(OpKind kind, uint32_t cf_id, const rocksdb::Slice& key,
                      const rocksdb::Slice* value) {
    int family = -1;
    for (int i = 0; i < kFamilies; ++i) {
      if (family_ids_[i] == cf_id) family = i;
    }
    if (family < 0) return rocksdb::Status::NotSupported("a family outside the state");
    chunk_.push_back(static_cast<char>(kind));
    chunk_.push_back(static_cast<char>(family));
    PutVarint64(&chunk_, key.size());
    chunk_.append(key.data(), key.size());
    if (value != nullptr) {
      PutVarint64(&chunk_, value->size());
      chunk_.append(value->data(), value->size());
    }
    if (chunk_.size() >= max_bytes_) Finish();
    return rocksdb::Status::OK();
  }

  uint32_t family_ids_[kFamilies];
  size_t max_bytes_;
  std::vector<std::string>* chunks_;
  std::string chunk_;
};

bool GetBytes(std::string_view* in, std::string_view* out) {
  uint64_t n;
  if (!GetVarint64(in, &n) || n > in->size()) return false;
  *out = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

std::string ShardPrefix(uint32_t shard) {
  std::string k;
  PutBe32(&k, shard);
  return k;
}

}  // namespace

Status Store::ExportImage(const Checkpoint& checkpoint, size_t max_bytes,
                          std::vector<std::string>* chunks) {
  const Checkpoint::Rep& rep = *checkpoint.rep_;
  const uint32_t ids[kFamilies] = {rep.store->meta->GetID(), rep.store->users->GetID(),
                                   rep.store->seen->GetID(), rep.store->idruns->GetID()};
  Exporter exporter(ids, std::max<size_t>(max_bytes, 1), chunks);
  rocksdb::Status s = rep.batch.Iterate(&exporter);
  if (!s.ok()) return store_internal::FromRocks(s);
  exporter.Finish();
  return Status::Ok();
}

Status Store::ApplyImage(uint32_t shard, const std::vector<std::string>& meta_keys,
                         std::string_view chunk) {
  const std::string prefix = ShardPrefix(shard);
  const std::string index_prefix = std::string(1, '\x01') + prefix;
  // A key of the shard's in `family`.
  auto ours = [&](uint8_t family, std::string_view key) {
    if (family != 0) return key.substr(0, 4) == prefix;
    return key.substr(0, 5) == index_prefix ||
           std::find(meta_keys.begin(), meta_keys.end(), key) != meta_keys.end();
  };
  rocksdb::ColumnFamilyHandle* handles[kFamilies] = {rep_->meta, rep_->users, rep_->seen,
                                                     rep_->idruns};
  rocksdb::WriteBatch batch;
  std::string_view in = chunk;
  while (!in.empty()) {
    if (in.size() < 2) return Status::Corruption("shard image: truncated op");
    const auto kind = static_cast<uint8_t>(in[0]);
    const auto family = static_cast<uint8_t>(in[1]);
    in.remove_prefix(2);
    std::string_view key, value;
    if (family >= kFamilies || kind < kPut || kind > kDeleteRange || !GetBytes(&in, &key) ||
        (kind != kDelete && !GetBytes(&in, &value))) {
      return Status::Corruption("shard image: a malformed op");
    }
    // A range delete ends within the shard, or at the next shard's first key.
    const std::string next = ShardPrefix(shard + 1);
    auto bounded_end = [&](std::string_view end) {
      return ours(family, end) || (family != 0 && end.substr(0, 4) == next &&
                                   end.find_first_not_of('\0', 4) == std::string_view::npos);
    };
    if (!ours(family, key) || (kind == kDeleteRange && (!bounded_end(value) || value <= key))) {
      return Status::Corruption("shard image: a key of another shard (" + std::to_string(shard) +
                                " expected)");
    }
    rocksdb::ColumnFamilyHandle* cf = handles[family];
    if (kind == kPut) {
      batch.Put(cf, S(key), S(value));
    } else if (kind == kDelete) {
      batch.Delete(cf, S(key));
    } else {
      batch.DeleteRange(cf, S(key), S(value));
    }
  }
  rocksdb::WriteOptions wo;
  TIERSTREAM_TSAN_WRITE_LOCK;
  return rep_->Note(kStateDb, rep_->db->Write(wo, &batch), true);
}

Status Store::ExportShard(uint32_t shard, const std::vector<std::string>& meta_keys,
                          size_t max_bytes, std::vector<std::string>* chunks) {
  const uint32_t ids[kFamilies] = {rep_->meta->GetID(), rep_->users->GetID(), rep_->seen->GetID(),
                                   rep_->idruns->GetID()};
  Exporter exporter(ids, std::max<size_t>(max_bytes, 1), chunks);
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  auto scan = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& begin,
                  const std::string& end) -> Status {
    const rocksdb::Slice upper(end);
    rocksdb::ReadOptions bounded = ro;
    bounded.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(bounded, cf));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      rocksdb::Status s = exporter.PutCF(cf->GetID(), it->key(), it->value());
      if (!s.ok()) return store_internal::FromRocks(s);
    }
    return rep_->Note(kStateDb, it->status(), false);
  };
  const std::string begin = ShardPrefix(shard), end = ShardPrefix(shard + 1);
  for (rocksdb::ColumnFamilyHandle* cf : {rep_->users, rep_->seen, rep_->idruns}) {
    Status s = scan(cf, begin, end);
    if (!s.ok()) return s;
  }
  Status s = scan(rep_->meta, std::string(1, '\x01') + begin, std::string(1, '\x01') + end);
  if (!s.ok()) return s;
  for (const std::string& key : meta_keys) {
    std::string value;
    bool found = false;
    s = GetMeta(key, &value, &found);
    if (!s.ok()) return s;
    if (found) (void)exporter.PutCF(rep_->meta->GetID(), key, value);
  }
  exporter.Finish();
  return Status::Ok();
}

Status Store::WipeShard(uint32_t shard, const std::vector<std::string>& meta_keys) {
  const std::string begin = ShardPrefix(shard), end = ShardPrefix(shard + 1);
  rocksdb::WriteBatch state;
  for (rocksdb::ColumnFamilyHandle* cf : {rep_->users, rep_->seen, rep_->idruns}) {
    state.DeleteRange(cf, S(begin), S(end));
  }
  state.DeleteRange(rep_->meta, S(std::string(1, '\x01') + begin), S(std::string(1, '\x01') + end));
  for (const std::string& key : meta_keys) state.Delete(rep_->meta, S(key));
  rocksdb::WriteBatch journal;
  journal.DeleteRange(rep_->journal_handles[0], S(LogKey(shard, 0)), S(LogKey(shard + 1, 0)));
  journal.Delete(rep_->changes, S(store_internal::ChangePositionKey(shard)));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TIERSTREAM_TSAN_WRITE_LOCK;
  Status s = rep_->Note(kJournalDb, rep_->journal->Write(wo, &journal), true);
  if (!s.ok()) return s;
  return rep_->Note(kStateDb, rep_->db->Write(wo, &state), true);
}

}  // namespace tierstream::state
