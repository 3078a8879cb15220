// TierChange: one tier transition of one user, as the change feed records it,
// and its persisted encoding.
//
// A shard numbers its changes (shard_seq: 1, 2, 3, ... in the order they
// happened) and each user hers (seq). The feed gives each a global cursor
// when it is written; shard_seq is what recovery uses to tell a change the
// feed already holds from one it must still write (the journal replays to
// the same changes in the same order).
//
// Thread safety: a plain value; the codec is pure.
#ifndef TIERSTREAM_STATE_TIER_CHANGE_H_
#define TIERSTREAM_STATE_TIER_CHANGE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "state/user_state.h"

namespace tierstream {
class JsonWriter;
}  // namespace tierstream

namespace tierstream::state {

enum class ChangeCause : uint8_t {
  kEvent = 1,  // an event of hers (or a join naming her as referrer)
  kTime = 2,   // T crossed into a day on which her tier changes by itself
  kRules = 3,  // the tier rules changed at start-up
};

struct TierChange {
  uint64_t shard_seq = 0;
  std::string user_id;
  uint32_t seq = 0;         // her changes so far, this one included
  Tier from = Tier::kNone;  // kNone: her first tier
  Tier to = Tier::kNone;
  int64_t at_ms = 0;  // T when it took effect
  ChangeCause cause = ChangeCause::kEvent;
  std::string cause_ref;   // the event id (kEvent) or the rules (kRules)
  int64_t written_ms = 0;  // wall clock when the feed wrote it (retention)
};

// Value encoding: a version byte, then varints and length-prefixed strings.
void EncodeTierChange(const TierChange& c, std::string* out);
Status DecodeTierChange(std::string_view in, TierChange* c);

// Writes a change's fields as the API and the Kafka change topic give them —
// "user_id", "seq", "from" (null: her first tier), "to", "at" and "cause"
// ({"event_id"}, {"time": true} or {"rules"}) — into the object `jw` has open.
void WriteTierChangeFields(JsonWriter& jw, const TierChange& c);

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_TIER_CHANGE_H_
