// IngestSession: turns the bytes of one HTTP body or one TCP connection into
// Batches for the Pipeline and gathers their outcomes into the summary of
// SPEC §6 ({"accepted","duplicates","rejected","errors"}), and, for a
// connection that stays open, into its durable prefix (the acks).
//
// Streamed input is framed at newlines; a line longer than 1 MiB is counted
// as rejected and skipped without being buffered. A UTF-8 byte-order mark at
// the very start of the input is skipped.
//
// Thread safety: Feed()/BeginWhole()/FeedWholeSlice()/Finish() are confined to the owner's
// thread (a connection's handler); batch completions arrive on worker threads
// and are merged under a mutex; Progress() may be called from any thread.
#ifndef TIERSTREAM_SERVER_INGEST_SESSION_H_
#define TIERSTREAM_SERVER_INGEST_SESSION_H_

#include <absl/base/thread_annotations.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "ingest/decoder.h"
#include "pipeline/pipeline.h"
#include "server/ingest_metrics.h"

namespace tierstream::server {

// The durable prefix of a stream: lines 1..durable_lines are all durable or
// rejected (batches complete out of order across shards; this only grows over
// a run of completed batches from the first one), and the counts over them.
struct IngestProgress {
  uint64_t durable_lines = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  // Not OK when the batch right after the prefix was refused (store failure,
  // disk low): the prefix ends there for good.
  Status refused;
  // {"durable_lines":N,"accepted":A,"duplicates":D,"rejected":R}
  std::string ToAckJson() const;
};

struct IngestSummary {
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  std::vector<ingest::LineError> errors;  // first 100 by line
  Status status;                          // not OK when some events were refused
  IngestProgress durable;                 // the durable prefix at the end
  // The POST answer: totals over the body.
  std::string ToJson() const;
  // The TCP connection's last line: the counts over the durable prefix (all
  // lines unless a batch was refused), "durable_lines", the errors in it.
  std::string ToStreamJson() const;
};

class IngestSession : public std::enable_shared_from_this<IngestSession> {
 public:
  // `counters` (may be null) counts the session's batches as they are
  // answered. REQUIRES: it outlives them, as `pipeline` does.
  IngestSession(pipeline::Pipeline* pipeline, std::string source,
                IngestCounters* counters = nullptr);

  // Called on a worker thread, without locks held, whenever the durable
  // prefix grew or a refusal ended it. Set before the first Feed.
  void set_on_progress(std::function<void()> on_progress) { on_progress_ = std::move(on_progress); }
  // The Kafka mode (server/cluster_hooks.h): complete lines go to this
  // instead of the pipeline — it takes them (numbered from `first_line`; not
  // read after the call) and calls `done` once they are in the input topic,
  // "accepted" counting the valid lines produced. Set before the first Feed.
  using LineProducer = std::function<void(std::string_view lines, uint64_t first_line,
                                          std::function<void(pipeline::BatchOutcome)> done)>;
  void set_producer(LineProducer producer) { producer_ = std::move(producer); }

  // Streamed input: decodes and submits every complete line.
  void Feed(std::string_view bytes);
  // A whole body (an HTTP POST): NDJSON, or a JSON array of events, decoded
  // in place (no copy) by FeedWholeSlice(). Returns an error only for a
  // structurally broken array (see ingest::ArrayFramer), found before any
  // of it is submitted; nothing is then.
  // REQUIRES: `body` outlives the FeedWholeSlice() calls.
  Status BeginWhole(const ingest::PaddedBuffer& body);
  // Decodes and submits the next slice of the body (about 1 MiB of lines
  // or array elements); true once all of it is submitted (the body is no
  // longer read then). The caller may wait between slices, as a TCP
  // producer waits between reads, while the pipeline is full.
  bool FeedWholeSlice();
  // Ends the input and calls `done` once every submitted batch is durable
  // and applied. An incomplete final line (no newline) counts when
  // `take_partial_line` (a half-close), else it is dropped (a connection cut
  // short: its last line may be truncated).
  void Finish(std::function<void(IngestSummary)> done, bool take_partial_line = true);

  IngestProgress Progress();
  uint64_t lines() const { return next_line_ - 1; }

 private:
  // A submitted batch, in line order, until the prefix passes it.
  struct Span {
    uint64_t last_line = 0;
    bool done = false;
    uint64_t accepted = 0, duplicates = 0, rejected = 0;
    Status status;
  };
  void SubmitDecoded(std::string_view complete_lines);
  void Submit(std::unique_ptr<pipeline::Batch> batch);
  void OnBatchDone(uint64_t seq, pipeline::BatchOutcome outcome,
                   std::chrono::steady_clock::time_point submitted) ABSL_LOCKS_EXCLUDED(mu_);
  // Records a batch's outcome and advances the durable prefix; true when the
  // prefix moved and the feeder wants to hear of it.
  bool Complete(uint64_t seq, pipeline::BatchOutcome outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Once finished with nothing outstanding: moves out the callback (null
  // otherwise) and the summary, for Deliver() after mu_ is released.
  std::function<void(IngestSummary)> TakeDone(IngestSummary* summary)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Deliver(std::function<void(IngestSummary)> done, IngestSummary summary);

  pipeline::Pipeline* pipeline_;
  std::string source_;
  IngestCounters* const counters_;
  ingest::Decoder decoder_;
  ingest::PaddedBuffer pending_;  // an incomplete last line
  uint64_t next_line_ = 1;
  bool skipping_long_line_ = false;
  // Byte-order mark at the start: bytes of it seen so far (a read may end
  // inside it), until the first byte that is not part of one.
  size_t bom_seen_ = 0;
  bool bom_checked_ = false;
  // A whole body (BeginWhole): what is left of it to decode; its elements'
  // framer when it is a JSON array.
  std::string_view whole_;
  std::optional<ingest::ArrayFramer> array_;
  std::function<void()> on_progress_;
  LineProducer producer_;

  // What the pipeline's workers complete, concurrently with the feeding thread.
  Mutex mu_;
  IngestSummary summary_ ABSL_GUARDED_BY(mu_);
  std::deque<Span> spans_ ABSL_GUARDED_BY(mu_);  // spans_[0] is batch number first_span_
  uint64_t first_span_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_span_ ABSL_GUARDED_BY(mu_) = 0;
  IngestProgress progress_ ABSL_GUARDED_BY(mu_);
  uint64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(IngestSummary)> done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_INGEST_SESSION_H_
