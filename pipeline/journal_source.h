// JournalSource: the journal the shard workers append each group's accepted
// events to (the write-ahead of state, before an HTTP/TCP answer), read as a
// Source: partition = shard, position = log sequence number, record = log
// block. Appending stays the worker's (Store::AppendLog in ProcessGroup):
// this is the read side, used by recovery to replay after a checkpoint.
//
// Ownership: borrows the store, which must outlive it.
// Thread safety: thread-safe (the store is).
#ifndef TIERSTREAM_PIPELINE_JOURNAL_SOURCE_H_
#define TIERSTREAM_PIPELINE_JOURNAL_SOURCE_H_

#include <cstdint>

#include "pipeline/source.h"
#include "state/store.h"

namespace tierstream::pipeline {

class JournalSource final : public Source {
 public:
  JournalSource(state::Store* store, uint32_t shards) : store_(store), shards_(shards) {}

  uint32_t partitions() const override { return shards_; }
  Format format() const override { return Format::kLogBlock; }
  Status ReadFrom(uint32_t partition, uint64_t after, const RecordFn& fn) override {
    return store_->ScanLog(partition, after, fn);
  }

 private:
  state::Store* store_;
  uint32_t shards_;
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_JOURNAL_SOURCE_H_
