// What a data dir is pinned to, kept in the store's meta and checked when a
// pipeline opens it: the shard count (users are placed by hash modulo it)
// and the time zone (every per-day histogram is cut by it) must not change;
// the tier rules may, and then every user is re-evaluated during recovery.
// Also the meta keys under which each shard's checkpoint is found.
//
// Thread safety: thread-safe (free functions; the store is thread-safe).
#ifndef TIERSTREAM_PIPELINE_DATA_DIR_H_
#define TIERSTREAM_PIPELINE_DATA_DIR_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/hash.h"
#include "common/status.h"
#include "state/config.h"
#include "state/store.h"

namespace tierstream::pipeline {

struct DataDirPins {
  uint32_t shards = 0;         // the data dir's count (or the new one, now recorded)
  bool rules_changed = false;  // the tier rules differ from those it was written with
  std::string rules;           // the rules' key, for RecordRules once recovered
};

// Checks `config`, `requested_shards` (0: the data dir's count, or the
// number of cores for a new one) and `placement` against what the store at
// `data_dir` was written with, and records the shard count, placement and
// time zone of a new one. FailedPrecondition names the flag that would
// open it. (A data dir from before placements were recorded is kHash64.)
Result<DataDirPins> PinDataDir(state::Store* store, const std::string& data_dir,
                               uint32_t requested_shards, Placement placement,
                               const state::Config& config);
// Records the tier rules, once every user has been re-evaluated under them.
Status RecordRules(state::Store* store, const DataDirPins& pins);

// The meta key of a shard's checkpoint (aggregates, log position, ...).
std::string ShardMetaKey(uint32_t shard);
// The user index (Store::FindUsersByHash) is complete for a shard when its
// stamp, written with every shard meta, is the hash of that meta: a data dir
// from before the index, or checkpointed by such a binary since, has none or
// another, and its users are indexed again at the next start.
std::string UserIndexStampKey(uint32_t shard);
std::string UserIndexStamp(std::string_view meta);

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_DATA_DIR_H_
