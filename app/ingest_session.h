// IngestSession: turns the bytes of one HTTP body or one TCP connection into
// Batches for the Pipeline and gathers their outcomes into the summary of
// SPEC §6 ({"accepted","duplicates","rejected","errors"}).
//
// Streamed input is framed at newlines; a line longer than 1 MiB is counted
// as rejected and skipped without being buffered. A UTF-8 byte-order mark at
// the very start of the input is skipped. Feed()/FeedWhole()/Finish()
// are confined to the owner's thread (a connection's handler); batch
// completions arrive on worker threads and are merged under a mutex.
#ifndef TIERSTREAM_APP_INGEST_SESSION_H_
#define TIERSTREAM_APP_INGEST_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ingest/decoder.h"
#include "pipeline/pipeline.h"

namespace tierstream::app {

struct IngestSummary {
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  std::vector<ingest::LineError> errors;  // first 100 by line
  Status status;                          // not OK when some events were refused
  std::string ToJson() const;
};

class IngestSession : public std::enable_shared_from_this<IngestSession> {
 public:
  IngestSession(pipeline::Pipeline* pipeline, std::string source);

  // Streamed input: decodes and submits every complete line.
  void Feed(std::string_view bytes);
  // A whole body: NDJSON, or a JSON array of events. Returns an error only
  // for a structurally broken array (nothing of it is submitted then).
  Status FeedWhole(std::string_view body);
  // Ends the input (a final line without newline still counts) and calls
  // `done` once every submitted batch is durable and applied.
  void Finish(std::function<void(IngestSummary)> done);

  uint64_t lines() const { return next_line_ - 1; }

 private:
  void SubmitDecoded(std::string_view complete_lines);
  void OnBatchDone(pipeline::BatchOutcome outcome);
  void MaybeFinish(std::unique_lock<std::mutex>& lock);

  pipeline::Pipeline* pipeline_;
  std::string source_;
  ingest::Decoder decoder_;
  ingest::PaddedBuffer pending_;  // an incomplete last line
  uint64_t next_line_ = 1;
  bool skipping_long_line_ = false;
  // Byte-order mark at the start: bytes of it seen so far (a read may end
  // inside it), until the first byte that is not part of one.
  size_t bom_seen_ = 0;
  bool bom_checked_ = false;

  std::mutex mu_;
  IngestSummary summary_;
  uint64_t outstanding_ = 0;
  bool finished_ = false;
  std::function<void(IngestSummary)> done_;
};

}  // namespace tierstream::app

#endif  // TIERSTREAM_APP_INGEST_SESSION_H_
