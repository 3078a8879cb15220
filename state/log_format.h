// The journal's record format: binary encoding of accepted events for the
// durable log, compact, versioned per block, decoded without copies (decoded
// strings point into the block). The journal (Store::AppendLog) stores these
// blocks; recovery replays them.
// Thread safety: pure functions are thread-safe; a LogBlockReader is confined.
#ifndef TIERSTREAM_STATE_LOG_FORMAT_H_
#define TIERSTREAM_STATE_LOG_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "ingest/event.h"

namespace tierstream::state {

// Version 2 blocks open with the counts of what the group took besides its
// events, so that every counter survives a crash with the events it came
// with; version 1 blocks (events only) are still read.
inline constexpr char kLogBlockVersion = 2;

// What a logged group counted besides its accepted events.
struct LogBlockCounts {
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t beyond_horizon = 0;  // accepted events older than the duplicate horizon
};

// Starts a block: the version byte and room for its counts.
void BeginLogBlock(std::string* out);
// Fills in the counts of a block begun with BeginLogBlock.
void SetLogBlockCounts(const LogBlockCounts& counts, std::string* block);
void AppendEventRecord(const ingest::Event& e, std::string* out);

// Iterates the records of one block.
class LogBlockReader {
 public:
  explicit LogBlockReader(std::string_view block);
  bool ok() const { return ok_; }  // false once a record fails to decode
  const LogBlockCounts& counts() const { return counts_; }
  // Decodes the next record; false at the end or on corruption (see ok()).
  bool Next(ingest::Event* e);

 private:
  std::string_view rest_;
  LogBlockCounts counts_;
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
