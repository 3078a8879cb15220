// ShardCheckpoint: which of a shard's users changed since its last
// checkpoint, and the snapshot that hands them to the checkpoint as of one
// moment.
//
// Users are marked dirty with the current epoch. BeginSnapshot takes the
// dirty list in O(1) (a swap, and the epoch moves on); Step encodes it in
// slices between events, and a user about to change before her turn is
// encoded first (Touch: copy on write). Each reaches the sink once, exactly
// as she was at BeginSnapshot. Done(false) marks them dirty again, and those
// the snapshot persisted for the first time unindexed.
//
// The rest of a checkpoint (the new ids, the spilled runs, the shard meta,
// and the order in which they are taken and confirmed) is ShardState's, in
// shard_checkpoint.cc beside this.
//
// Ownership: owned by its ShardState; it refers to users by slot of the
// UserTable passed in. Thread safety: confined.
#ifndef TIERSTREAM_STATE_SHARD_CHECKPOINT_H_
#define TIERSTREAM_STATE_SHARD_CHECKPOINT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "state/user_table.h"

namespace tierstream::state {

class ShardCheckpoint {
 public:
  using SnapshotSink = std::function<void(std::string_view user_id, std::string_view encoded)>;
  using IndexSink = std::function<void(uint64_t hash, std::string_view user_id)>;

  ShardCheckpoint() = default;
  ShardCheckpoint(const ShardCheckpoint&) = delete;
  ShardCheckpoint& operator=(const ShardCheckpoint&) = delete;

  // Call before any change to a user.
  void Touch(UserTable& users, uint32_t slot) {
    if (snap_epoch_ != 0 && users.slot(slot).epoch == snap_epoch_) SnapshotUser(users, slot);
  }
  // Call after a change to a user.
  void MarkDirty(UserTable& users, uint32_t slot) {
    UserSlot& s = users.slot(slot);
    if (s.epoch != epoch_) {  // Touch() has taken her out of a pending snapshot
      s.epoch = epoch_;
      dirty_.push_back(slot);
    }
  }
  size_t dirty_count() const { return dirty_.size(); }

  void BeginSnapshot(SnapshotSink sink, IndexSink index);
  // Encodes up to `budget` users; returns true once the snapshot is complete.
  bool Step(UserTable& users, size_t budget);
  // The snapshot's users are written (ok) or are to be written again.
  // Returns false if a snapshot was still in progress (then nothing of it
  // can have been written: it is taken back, as on failure).
  bool Done(UserTable& users, bool ok);

 private:
  void SnapshotUser(UserTable& users, uint32_t slot);

  std::vector<uint32_t> dirty_;           // changed in epoch_
  std::vector<uint32_t> draining_dirty_;  // the snapshot's users, until Done
  uint32_t epoch_ = 1;
  uint32_t snap_epoch_ = 0;  // the epoch being snapshot; 0: none
  size_t snap_pos_ = 0;
  SnapshotSink snap_sink_;
  IndexSink snap_index_sink_;
  std::vector<uint32_t> snap_indexed_;  // users first persisted by the snapshot in flight
  std::string snap_buf_;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_SHARD_CHECKPOINT_H_
