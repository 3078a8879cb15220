// Sink: what leaves the pipeline. The next output is tier changes (a member
// who becomes dormant, high_value, ...), for whoever must act on them.
//
// NOT WIRED YET: PipelineOptions takes no Sink and ShardState does not
// report tier changes; this is the contract the next issue implements.
//
// Contract: a shard's worker calls OnTierChanges with the changes of its
// users, in the order they happened (by event time, then by the sweep that
// found them), after the events that caused them are durable. Delivery is
// at least once: after a crash, the journal replayed since the shard's last
// checkpoint reports its changes again, with the same (user_id, to, as_of),
// so a sink can drop repeats.
//
// Thread safety: OnTierChanges is called concurrently from every shard's
// worker (never concurrently for one shard) and must not block: it is on
// the ingest path. Implementations must be thread-safe.
#ifndef TIERSTREAM_PIPELINE_SINK_H_
#define TIERSTREAM_PIPELINE_SINK_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "state/user_state.h"

namespace tierstream::pipeline {

struct TierChange {
  std::string_view user_id;  // valid only during the call
  state::Tier from = state::Tier::kNone;
  state::Tier to = state::Tier::kNone;
  int64_t as_of = 0;  // T (event time, ms) when the change took effect
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void OnTierChanges(uint32_t shard, std::span<const TierChange> changes) = 0;
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_SINK_H_
