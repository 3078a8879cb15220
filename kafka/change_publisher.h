// ChangePublisher: the Kafka mode's change feed. It produces the tier
// changes of each committed checkpoint to PREFIX-changes, one JSON record
// per change keyed by user_id (murmur2, as Kafka's Java clients partition),
// carrying user_id, seq, from, to, at, cause, partition and the owner
// generation:
//   {"user_id":"u1","seq":2,"from":"new","to":"active","at":1714003200000,
//    "cause":{"event_id":"e9"},"partition":3,"generation":118}
//
// A checkpoint's changes go once its changelog marker is acknowledged and
// the owner checked that no other member claimed the partition before that
// marker (Hooks::owns): a change is published only from a checkpoint a
// later owner restores, so one (user_id, seq) never carries two different
// changes (kafka/changelog.h). Delivery is at least once — a takeover
// produces again what no published record covers — so a consumer drops
// repeats by (user_id, seq).
//
// Thread safety: thread-safe. Publishing runs on a thread of its own.
#ifndef TIERSTREAM_KAFKA_CHANGE_PUBLISHER_H_
#define TIERSTREAM_KAFKA_CHANGE_PUBLISHER_H_

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kafka/options.h"

namespace tierstream::kafka {

class ChangePublisher {
 public:
  struct Hooks {
    // Whether this member still owned partition p under `generation` when
    // its changelog record at `marker_offset` was written (no other claim
    // came between). On the publisher's thread.
    std::function<Result<bool>(uint32_t p, uint64_t generation, int64_t marker_offset)> owns;
    // A checkpoint's changes are acknowledged: the changelog's published
    // record goes (kafka/changelog.h). On the publisher's thread.
    std::function<void(uint32_t p, uint64_t generation, uint64_t checkpoint)> published;
    // Serves the changelog producer's delivery reports (which settle the
    // markers waited for), so that waiting needs no other thread.
    std::function<void()> serve_deliveries;
  };

  static Result<std::unique_ptr<ChangePublisher>> Start(const KafkaOptions& options, Hooks hooks);
  ~ChangePublisher();  // Stop()
  ChangePublisher(const ChangePublisher&) = delete;
  ChangePublisher& operator=(const ChangePublisher&) = delete;

  // The changes (encoded state::TierChange) of checkpoint `checkpoint` of
  // partition p, to publish once `marker` gives its marker's offset (-1: it
  // was not written: they are not published). Blocks while 64 wait.
  void Publish(uint32_t p, uint64_t generation, uint64_t checkpoint,
               std::vector<std::string> changes, std::future<int64_t> marker);
  // Produces changes at once and waits until they are acknowledged (a
  // takeover's, before its base). On the caller's thread.
  Status ProduceNow(uint32_t p, uint64_t generation, std::span<const std::string_view> changes);
  // Publishes what is queued, as far as its markers come, and stops.
  void Stop();

  // Changes produced (and acknowledged), again ones included; checkpoints
  // whose changes were not published because another member had claimed
  // the partition.
  uint64_t published() const;
  uint64_t fenced() const;

 private:
  struct Impl;
  explicit ChangePublisher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A change as PREFIX-changes carries it (the JSON above), and its key.
Status RenderPublishedChange(std::string_view encoded, uint32_t partition, uint64_t generation,
                             std::string* json, std::string* user_id);

}  // namespace tierstream::kafka

#endif  // TIERSTREAM_KAFKA_CHANGE_PUBLISHER_H_
