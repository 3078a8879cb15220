// InputPosition: where a shard stands in a partitioned input log (Kafka),
// kept with its state so that state and input move together.
//
// A shard of the Kafka mode reads two partitions with the same number: its
// partition of the input topic, and its partition of the repartition topic
// (events that other partitions forwarded to its users). Each position is
// the next offset to read, so 0 means "from the first". Positions only grow.
// The journal mode has none (its position is the log sequence number).
#ifndef TIERSTREAM_STATE_INPUT_POSITION_H_
#define TIERSTREAM_STATE_INPUT_POSITION_H_

#include <algorithm>
#include <cstdint>

namespace tierstream::state {

struct InputPosition {
  uint64_t events = 0;       // next offset of the input topic's partition
  uint64_t repartition = 0;  // next offset of the repartition topic's partition

  bool empty() const { return events == 0 && repartition == 0; }
  // The position after both (each stream at the later of the two).
  void Merge(const InputPosition& other) {
    events = std::max(events, other.events);
    repartition = std::max(repartition, other.repartition);
  }
  friend bool operator==(const InputPosition&, const InputPosition&) = default;
};

// What a shard took of the events another partition forwarded to it: the
// next offset of that partition's input not yet taken. A partition that
// reads its input again (after a failure, or a takeover) forwards the same
// events again, with the same source offsets: those below the mark are
// dropped unseen, so that they count neither as events nor as duplicates.
struct ForwardMark {
  uint32_t source = 0;  // the forwarding partition
  uint64_t next = 0;
  friend bool operator==(const ForwardMark&, const ForwardMark&) = default;
};

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_INPUT_POSITION_H_
