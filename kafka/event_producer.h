// EventProducer: POST /v1/events in the Kafka mode. A body's lines are
// decoded as the consumers will decode them; each line is produced to the
// input topic as one record, a valid one keyed by its user_id (murmur2, as
// Kafka's Java clients partition: it lands on its user's partition and is
// never forwarded), a rejected one unkeyed (whoever owns the partition it
// lands on counts it in events_rejected, as for any producer) and answered
// with its error. The answer comes once Kafka acknowledged every record of
// the body (idempotent producer, acks=all): "produced" records are in the
// topic, and the instances owning their partitions count them (duplicates
// included: those are recognised there, by event_id).
//
// Thread safety: thread-safe. Delivery reports are served on a thread of
// its own; `done` runs there (or on the caller's thread for a body with
// nothing to produce).
#ifndef TIERSTREAM_KAFKA_EVENT_PRODUCER_H_
#define TIERSTREAM_KAFKA_EVENT_PRODUCER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ingest/decoder.h"
#include "kafka/options.h"
#include "pipeline/batch.h"

namespace tierstream::kafka {

struct ProduceSummary {
  uint64_t produced = 0;
  uint64_t rejected = 0;
  std::vector<ingest::LineError> errors;  // the first 100, by line
  Status status;                          // not ok: some records were not acknowledged
  // {"produced": N, "rejected": M, "errors": [{"line", "error"}, ...]},
  // with "error" first when status is not ok.
  std::string ToJson() const;
};

class EventProducer {
 public:
  static Result<std::unique_ptr<EventProducer>> Start(const KafkaOptions& options);
  ~EventProducer();  // waits up to 10 s for what is in flight
  EventProducer(const EventProducer&) = delete;
  EventProducer& operator=(const EventProducer&) = delete;

  // Produces the lines of `body` (NDJSON); `done` runs once, when every
  // record is acknowledged or failed. `body` is not used after the call.
  void Produce(const ingest::PaddedBuffer& body, std::function<void(ProduceSummary)> done);
  // The same for lines of a stream (TCP ingest, server/ingest_session.h),
  // numbered from `first_line`: `done` gets their outcome ("accepted": the
  // valid lines produced). REQUIRES: kPadding readable bytes after them.
  void ProduceLines(std::string_view lines, uint64_t first_line,
                    std::function<void(pipeline::BatchOutcome)> done);

 private:
  void Send(std::string_view text, uint64_t first_line,
            std::function<void(pipeline::BatchOutcome, uint64_t produced)> done);

  struct Impl;
  explicit EventProducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_EVENT_PRODUCER_H_
