// Binary encoding of accepted events for the durable log: compact, versioned
// per block, decoded without copies (decoded strings point into the block).
// Pure functions; thread-safe.
#ifndef TIERSTREAM_INGEST_EVENT_CODEC_H_
#define TIERSTREAM_INGEST_EVENT_CODEC_H_

#include <string>
#include <string_view>

#include "ingest/event.h"

namespace tierstream::ingest {

inline constexpr char kLogBlockVersion = 1;

// Starts a block: appends the version byte.
inline void BeginLogBlock(std::string* out) { out->push_back(kLogBlockVersion); }
void AppendEventRecord(const Event& e, std::string* out);

// Iterates the records of one block.
class LogBlockReader {
 public:
  explicit LogBlockReader(std::string_view block);
  bool ok() const { return ok_; }  // false once a record fails to decode
  // Decodes the next record; false at the end or on corruption (see ok()).
  bool Next(Event* e);

 private:
  std::string_view rest_;
  bool ok_ = true;
};

}  // namespace tierstream::ingest

#endif  // TIERSTREAM_INGEST_EVENT_CODEC_H_
