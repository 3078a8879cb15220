// ClaimShard: the Kafka mode's takeover of a shard by a new owner — on the
// shard's worker, between groups: the shard is made whole (reloaded from the
// store when the caller rebuilt it there from the changelog), checkpointed
// under the new owner generation, and exported whole as its new base.
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/data_dir.h"
#include "pipeline/pipeline_impl.h"

namespace tierstream::pipeline {

std::vector<std::string> Pipeline::ShardMetaKeys(uint32_t shard) {
  return {ShardMetaKey(shard), UserIndexStampKey(shard)};
}

Status Pipeline::ClaimShard(uint32_t shard, uint64_t generation, const RebuildFn& rebuild,
                            const BaseFn& publish_base) {
  Impl::Worker* w = impl_->workers[shard].get();
  ShardCall call;
  call.fn = [&] { return impl_->Claim(w, generation, rebuild, publish_base); };
  std::future<Status> done = call.done.get_future();
  w->queue.enqueue(Task{nullptr, &call});
  return done.get();
}

Status Pipeline::CheckpointShard(uint32_t shard) {
  Impl::Worker* w = impl_->workers[shard].get();
  ShardCall call;
  call.fn = [&] { return impl_->Checkpoint(w); };
  std::future<Status> done = call.done.get_future();
  w->queue.enqueue(Task{nullptr, &call});
  return done.get();
}

bool Pipeline::AnswersFor(std::string_view user_id, uint32_t* partition) const {
  const uint32_t shard = ShardOf(user_id, shards(), impl_->options.placement);
  *partition = shard;
  return impl_->workers[shard]->owned.load(std::memory_order_acquire);
}

void Pipeline::ReleaseShard(uint32_t shard) {
  impl_->workers[shard]->owned.store(false, std::memory_order_release);
}

Status Pipeline::Impl::Claim(Worker* w, uint64_t generation, const Pipeline::RebuildFn& rebuild,
                             const Pipeline::BaseFn& publish_base) {
  // Nothing in flight: the store holds the shard's last checkpoint, and its
  // changes are in the feed.
  FinishSpill(w, true /*wait*/);
  Status s;
  if (FinishCheckpoint(w, true, &s) && !s.ok()) {
    LogAt(LogLevel::kError, "shard %u: checkpoint failed: %s", w->id, s.ToString().c_str());
  }
  s = FlushChanges(w);
  if (!s.ok()) return s;
  Result<bool> rebuilt = rebuild(w->committed, store.get());
  if (!rebuilt.ok()) return rebuilt.status();
  if (*rebuilt) {
    // The shard's state is what the store now holds: a fresh one, loaded.
    w->state.~ShardState();
    new (&w->state) state::ShardState(w->id, options.config, &w->store_reader, &w->store_reader);
    ConfigureState(w);
    w->log_seq = w->checkpoint_seq = 0;
    w->logged_since_checkpoint = w->processed_since_housekeep = 0;
    w->committed = ShardMark{};
    w->unexported_changes.clear();  // made by the state just replaced
    s = LoadShard(w);
    if (!s.ok()) return s;
    // The feed goes on from the restored shard's changes.
    w->feed_position = w->state.change_seq();
    PublishInputPosition(w);
    const int32_t today = Today();
    if (today != kNoDay) w->state.Sweep(today, SIZE_MAX);
  }
  w->state.set_owner_generation(generation);
  w->owned.store(true, std::memory_order_release);
  s = Checkpoint(w);
  if (!s.ok()) return s;
  std::vector<std::string> base;
  s = store->ExportShard(w->id, Pipeline::ShardMetaKeys(w->id), kImageChunkBytes, &base);
  if (!s.ok()) return s;
  return publish_base(std::move(base), w->committed);
}

}  // namespace tierstream::pipeline
