// Webhooks: the config's webhooks, each delivering the change feed's tier
// changes that pass its filter to its URL, in signed JSON batches, at least
// once (README: "Webhooks"; the delivery itself: webhook_delivery.h).
//
// Every webhook is known by a stable id, a hash of its url and filters, so
// reordering the config keeps each one's position; its position is saved
// in the store (Pipeline::PutConsumerState) after every delivered batch. A
// webhook with no saved position starts at the feed's end as of Start().
// All of them run on one thread of their own (its own io_context), off the
// shard workers: a failing or slow receiver lags, it never slows ingest.
//
// Ownership: holds neither the pipeline nor anything of the server.
// Thread safety: Stats() is thread-safe; Start and Stop are called by the
// one thread that owns the object.
#ifndef TIERSTREAM_SERVER_WEBHOOKS_H_
#define TIERSTREAM_SERVER_WEBHOOKS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/pipeline.h"
#include "server/webhook_stats.h"
#include "state/config.h"

namespace tierstream::server {

class Webhooks {
 public:
  // Reads each webhook's secret file (its content, surrounding blanks
  // trimmed); an error names the field ("config: webhooks[1].secret_file:
  // ...").
  static Result<std::unique_ptr<Webhooks>> Create(const std::vector<state::WebhookConfig>& hooks);
  ~Webhooks();  // Stop()s
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  // The id of a webhook: 16 hex digits of a hash of its url and filters.
  static std::string Id(const state::WebhookConfig& hook);

  // Loads each webhook's position (a new one's is the feed's end, saved at
  // once) and starts delivering. If an exception escapes a handler of the
  // webhooks' thread, the thread ends and `on_failure` (may be empty) runs
  // on it once, with what it said: serve shuts down, and a restart resumes
  // every webhook from its saved position. REQUIRES: `pipeline` has the
  // change log and outlives Stop(); called once.
  Status Start(pipeline::Pipeline* pipeline,
               std::function<void(const Status& failure)> on_failure = {});
  // Stops delivering, at once: a POST in flight is abandoned (its batch is
  // sent again, the same, after the next Start). Idempotent.
  void Stop();

  // One per webhook, in config order (before Start: ids and urls only).
  std::vector<WebhookStats> Stats() const;

 private:
  struct Impl;
  explicit Webhooks(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_WEBHOOKS_H_
