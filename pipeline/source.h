// Source: a partitioned, replayable input of events with positions.
//
// Each partition is an ordered sequence of records, each at a position that
// grows strictly within its partition. A consumer that has durably applied
// every record of a partition up to position P resumes with
// ReadFrom(partition, P) and sees each later record once, in order: that is
// how state and input position move together (a shard's checkpoint keeps
// its partition's position, as Kafka Streams keeps offsets in its store).
//
// Today: the journal behind the HTTP/TCP listeners (JournalSource: one
// partition per shard, positions are its log sequence numbers, records are
// log blocks), which recovery replays after each checkpoint, and the files
// of `tierstream replay` (FileSource: one partition per file, positions are
// byte offsets). Next: Kafka, whose partitions and offsets map one to one.
//
// Thread safety: each implementation states its own; ReadFrom of different
// partitions must be callable concurrently.
#ifndef TIERSTREAM_PIPELINE_SOURCE_H_
#define TIERSTREAM_PIPELINE_SOURCE_H_

#include <cstdint>
#include <functional>
#include <string_view>

#include "common/status.h"

namespace tierstream::pipeline {

class Source {
 public:
  // What a record holds.
  enum class Format {
    kLogBlock,  // state/log_format.h: events and the counts logged with them
    // Whole NDJSON lines (the last record of a partition may end without a
    // newline), followed by ingest::kPadding readable bytes, so that they
    // go to ingest::Decoder::DecodeLines as they are.
    kNdjson,
  };
  // Called per record; a non-OK status stops the read and is returned.
  using RecordFn = std::function<Status(uint64_t position, std::string_view record)>;

  virtual ~Source() = default;

  virtual uint32_t partitions() const = 0;
  virtual Format format() const = 0;
  // Calls fn(position, record) for each record of `partition` whose position
  // is after `after` (0: from the first; positions start at 1), in order, up
  // to the last one present when the read began. The record's bytes are
  // valid only during the call.
  // REQUIRES: partition < partitions().
  [[nodiscard]] virtual Status ReadFrom(uint32_t partition, uint64_t after, const RecordFn& fn) = 0;
};

}  // namespace tierstream::pipeline

#endif  // TIERSTREAM_PIPELINE_SOURCE_H_
