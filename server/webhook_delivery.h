// WebhookDelivery: one webhook's delivery of the change feed. Internal to
// server/webhooks.cc, which runs every delivery on one io_context thread of
// its own, off the shard workers.
//
// It reads the feed after its position (Pipeline::ReadChanges, with the
// webhook's filter) into a pending batch until max_batch changes are
// pending or max_delay_ms has passed since the first was written; then it
// seals the batch — saves (position, the batch's last cursor) first, so
// that after a crash exactly this batch is read back and sent again, byte
// for byte — and POSTs it until a 2xx answers, with exponential backoff and
// full jitter between attempts, forever: it lags, it never drops. After a
// 2xx the position moves to the batch's last cursor and is saved. Changes
// the filter drops move the position too when nothing is pending (saved at
// most once a second, and at Stop).
//
// The feed wakes it through Pipeline::OnChangesAfter, whose callback only
// posts to the io_context: a failing or slow receiver never slows a worker.
//
// Thread safety: confined to the io_context's thread, but Load (before the
// thread runs), Detach (after it stopped) and Stats (thread-safe).
#ifndef TIERSTREAM_SERVER_WEBHOOK_DELIVERY_H_
#define TIERSTREAM_SERVER_WEBHOOK_DELIVERY_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "pipeline/pipeline.h"
#include "server/webhook_post.h"
#include "server/webhook_stats.h"
#include "state/config.h"

namespace tierstream::server {

class WebhookDelivery {
 public:
  struct Spec {
    state::WebhookConfig config;
    std::string id;      // stable: Webhooks::Id(config)
    std::string secret;  // the HMAC key
  };

  // `ioc` is shared with the feed's callbacks, which may post to it after
  // the delivery is gone (the io_context is never run again by then).
  // `rng` (for the jitter) is confined to the io thread too.
  WebhookDelivery(std::shared_ptr<boost::asio::io_context> ioc, pipeline::Pipeline* pipeline,
                  Spec spec, std::mt19937_64* rng);
  WebhookDelivery(const WebhookDelivery&) = delete;
  WebhookDelivery& operator=(const WebhookDelivery&) = delete;

  // Before the io thread runs: the saved position, or for a webhook never
  // seen before the feed's end, saved at once (a backfill must not fire a
  // million old changes at it); a batch sealed but not delivered before a
  // restart is read back to be sent first.
  Status Load();
  // On the io thread: begins delivering.
  void Start();
  // After the io thread has stopped: forgets the feed wait, and saves a
  // position that passed over filtered changes since the last save.
  void Detach();
  // Thread-safe.
  WebhookStats Stats() const;

 private:
  using Clock = std::chrono::steady_clock;
  using Change = std::pair<uint64_t, state::TierChange>;
  struct Batch {
    uint64_t first = 0;
    uint64_t last = 0;
    size_t changes = 0;
    std::shared_ptr<const WebhookPost::Request> request;
  };

  // The one step every event (a feed advance, a timer, an answer) runs:
  // send the sealed batch, or read more, seal when due, and wait.
  void Pump();
  void Seal();
  void Send();
  void OnAnswer(const WebhookPost::Outcome& outcome);
  void WaitForFeed();
  void ArmFlush();
  // Waits `delay` before the next Pump (after a failure).
  void Pause(std::chrono::milliseconds delay);
  // The read after `scanned_` found it older than retention.
  void Skip(uint64_t oldest);
  void AdvanceIdle(Clock::time_point now);
  Status Save(uint64_t position, uint64_t sealed_last);
  void MakeBatch();
  void NoteError(const std::string& what, bool failed_post);

  const std::shared_ptr<boost::asio::io_context> ioc_;
  pipeline::Pipeline* const pipeline_;
  const Spec spec_;
  const pipeline::ChangeFilter filter_;
  std::mt19937_64* const rng_;
  WebhookPost post_;
  boost::asio::steady_timer flush_timer_;
  boost::asio::steady_timer retry_timer_;

  // On the io thread.
  uint64_t position_ = 0;  // delivered or passed over through this cursor
  uint64_t saved_ = 0;     // the position last saved
  uint64_t scanned_ = 0;   // the feed is read through this cursor
  std::vector<Change> pending_;
  Clock::time_point first_pending_;  // when the first pending change was written
  std::optional<Batch> batch_;       // sealed: sent until a 2xx answers
  int attempts_ = 0;                 // failed POSTs of batch_
  bool sending_ = false;
  bool paused_ = false;
  bool flush_armed_ = false;
  bool feed_wait_ = false;
  uint64_t feed_token_ = 0;
  Clock::time_point last_save_;
  Clock::time_point last_failure_log_;

  mutable Mutex mu_;
  WebhookStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_WEBHOOK_DELIVERY_H_
