// The journal's record format: binary encoding of accepted events for the
// durable log, compact, versioned per block, decoded without copies (decoded
// strings point into the block). The journal (Store::AppendLog) stores these
// blocks; recovery replays them.
//
// Replay must give the same tier changes in the same order as the live run
// did (the change feed relies on it), so a block records everything that
// decided them: T as the group was applied, and the tier changes the sweep
// made (time changes) between groups, each as its own record.
// Thread safety: pure functions are thread-safe; a LogBlockReader is confined.
#ifndef TIERSTREAM_STATE_LOG_FORMAT_H_
#define TIERSTREAM_STATE_LOG_FORMAT_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/event.h"
#include "state/input_position.h"

namespace tierstream::state {

// Version 2 blocks open with the counts of what the group took besides its
// events, so that every counter survives a crash with the events it came
// with; version 3 adds T (the group's events were applied as of it) and
// time-change records; version 4 the shard's input position after the
// group (the Kafka mode; see input_position.h). Versions 1 (events only), 2
// and 3 are still read.
inline constexpr char kLogBlockVersion = 4;

// What a logged group counted besides its accepted events.
struct LogBlockCounts {
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t beyond_horizon = 0;  // accepted events older than the duplicate horizon
};

// Starts a block: the version byte, room for its counts, `t_ms`, T as its
// events are applied (kNoTs: none, a block of time changes only), and the
// shard's input position after it (null: none, as in the journal mode).
// With a position, `marks` are the forward marks the group moved.
void BeginLogBlock(std::string* out, int64_t t_ms = INT64_MIN,
                   const InputPosition* position = nullptr,
                   std::span<const ForwardMark> marks = {});
// Fills in the counts of a block begun with BeginLogBlock.
void SetLogBlockCounts(const LogBlockCounts& counts, std::string* block);
void AppendEventRecord(const ingest::Event& e, std::string* out);
// A change of `user_id`'s tier that the sweep made as T crossed into `day`.
void AppendTimeChangeRecord(std::string_view user_id, int32_t day, std::string* out);

// One record of a block: an event, or a time change (user_id and day).
struct LogRecord {
  enum class Kind { kEvent, kTimeChange } kind = Kind::kEvent;
  ingest::Event event;
  std::string_view user_id;  // kTimeChange
  int32_t day = 0;           // kTimeChange
};

// Iterates the records of one block.
class LogBlockReader {
 public:
  explicit LogBlockReader(std::string_view block);
  bool ok() const { return ok_; }  // false once a record fails to decode
  const LogBlockCounts& counts() const { return counts_; }
  // T as the block's events were applied; kNoTs in blocks before version 3.
  int64_t t_ms() const { return t_ms_; }
  // The shard's input position after the block; false if it has none (the
  // journal mode, blocks before version 4).
  bool has_position() const { return has_position_; }
  const InputPosition& position() const { return position_; }
  const std::vector<ForwardMark>& marks() const { return marks_; }
  // Decodes the next record; false at the end or on corruption (see ok()).
  bool Next(LogRecord* r);
  // The next event, passing over time changes.
  bool Next(ingest::Event* e);

 private:
  std::string_view rest_;
  LogBlockCounts counts_;
  int64_t t_ms_ = INT64_MIN;
  InputPosition position_;
  std::vector<ForwardMark> marks_;
  bool has_position_ = false;
  bool ok_ = true;
};

}  // namespace tierstream::state

namespace tierstream::ingest {
// Transitional: the log format lived here as ingest/event_codec.h. These go
// once pipeline/ names them state:: (kept so that its split need not change).
using state::AppendEventRecord;
using state::BeginLogBlock;
using state::kLogBlockVersion;
using state::LogBlockCounts;
using state::LogBlockReader;
using state::SetLogBlockCounts;
}  // namespace tierstream::ingest

#endif  // TIERSTREAM_STATE_LOG_FORMAT_H_
