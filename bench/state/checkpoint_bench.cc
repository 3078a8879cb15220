// Cost of a checkpoint per dirty user: draining and encoding the dirty users
// of a shard into one atomic RocksDB WriteBatch (with the shard meta) and
// committing it, as a pipeline worker does (fsync off, its default).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "bench/synthetic_events.h"
#include "state/shard_state.h"
#include "state/store.h"

namespace tierstream::state {
namespace {

using bench::UserId;
using ingest::Event;
using ingest::EventType;

constexpr uint32_t kShard = 0;
constexpr int kDays = 20;

// A RocksDB directory removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "tierstream-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Users with 20 days of history: a join, then a message every day and an
// order every fifth day, so each carries a 20-bucket list.
void Populate(ShardState* shard, int64_t users) {
  std::string user;
  Event e;
  for (int64_t d = 0; d < kDays; ++d) {
    const int64_t day_ms = bench::kStartMs + d * kMsPerDay;
    for (int64_t i = 0; i < users; ++i) {
      user = UserId(i);
      e.user_id = user;
      e.ts_ms = day_ms + i;
      e.type = d == 0 ? EventType::kJoin : EventType::kMessage;
      e.amount_fen = 0;
      if (d > 0 && (d + i) % 5 == 0) {
        e.type = EventType::kOrder;
        e.amount_fen = 4990;
      }
      shard->Apply(e, bench::DayOfDefault(e.ts_ms));
    }
  }
}

// Each user sends one more message on the last day, so all are dirty again.
void Touch(ShardState* shard, int64_t users) {
  std::string user;
  Event e;
  e.type = EventType::kMessage;
  e.ts_ms = bench::kStartMs + (kDays - 1) * kMsPerDay + 1;
  const int32_t today = bench::DayOfDefault(e.ts_ms);
  for (int64_t i = 0; i < users; ++i) {
    user = UserId(i);
    e.user_id = user;
    shard->Apply(e, today);
  }
}

// One checkpoint as Pipeline::Impl::Checkpoint writes it (users and meta).
Status Checkpoint(ShardState* shard, Store* store, uint64_t log_seq, int64_t* bytes) {
  Store::Checkpoint cp(store);
  shard->DrainDirty([&](std::string_view id, std::string_view encoded) {
    cp.PutUser(kShard, id, encoded);
    *bytes += static_cast<int64_t>(id.size() + encoded.size());
  });
  std::string meta;
  shard->EncodeMeta(log_seq, &meta);
  cp.PutMeta("shard/0", meta);
  Status s = store->Commit(&cp, false /*sync*/);
  shard->CheckpointDone(s.ok(), NewSeenIds{});
  return s;
}

// After one checkpoint the store holds exactly `users` users, each decodable
// and with the history Populate gave it; "" if so.
std::string CheckStore(Store* store, int64_t users) {
  int64_t count = 0;
  std::string wrong;
  Status s = store->ScanUsers(kShard, "", [&](std::string_view id, std::string_view encoded) {
    UserState u;
    if (id != UserId(count)) {
      wrong = "unexpected user id";
    } else if (!DecodeUserState(encoded, &u).ok()) {
      wrong = "a stored user does not decode";
    } else if (u.buckets.size() != kDays - 1 ||  // a join opens no bucket
               u.first_join_ts != bench::kStartMs + count) {
      wrong = "a stored user lost her history";
    }
    ++count;
    return wrong.empty();
  });
  if (!s.ok()) return "scan failed: " + s.ToString();
  if (!wrong.empty()) return wrong;
  if (count != users) return "stored user count differs";
  std::string meta;
  bool found = false;
  if (!store->GetMeta("shard/0", &meta, &found).ok() || !found) return "shard meta missing";
  return "";
}

void BM_Store_Checkpoint(benchmark::State& state) {
  const int64_t users = state.range(0);
  TempDir dir;
  if (dir.path().empty()) {
    state.SkipWithError("cannot create a temporary directory");
    return;
  }
  auto opened = Store::Open(dir.path(), StoreOptions{});
  if (!opened.ok()) {
    state.SkipWithError(("cannot open the store: " + opened.status().ToString()).c_str());
    return;
  }
  std::unique_ptr<Store> store = std::move(opened).value();
  ShardState shard(kShard, Config{});
  Populate(&shard, users);
  int64_t bytes = 0;
  uint64_t log_seq = 0;
  {  // Verify before timing.
    if (shard.dirty_count() != static_cast<size_t>(users)) {
      state.SkipWithError("not every user is dirty");
      return;
    }
    Status s = Checkpoint(&shard, store.get(), ++log_seq, &bytes);
    const std::string wrong = s.ok() ? CheckStore(store.get(), users) : s.ToString();
    if (!wrong.empty() || shard.dirty_count() != 0) {
      state.SkipWithError(("checkpoint output is wrong: " + wrong).c_str());
      return;
    }
  }
  bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    Touch(&shard, users);
    state.ResumeTiming();
    Status s = Checkpoint(&shard, store.get(), ++log_seq, &bytes);
    if (!s.ok()) {
      state.SkipWithError(("commit failed: " + s.ToString()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * users);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_Store_Checkpoint)->ArgName("dirty_users")->Arg(10'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tierstream::state

BENCHMARK_MAIN();
