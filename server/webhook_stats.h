// WebhookStats: how far one webhook's delivery is (server/webhooks.h), as
// /healthz shows it and /metrics counts it. Boost-free and header-only, so
// that the HTTP API (server/http_api.h) can render it without the delivery.
//
// Thread safety: a plain value.
#ifndef TIERSTREAM_SERVER_WEBHOOK_STATS_H_
#define TIERSTREAM_SERVER_WEBHOOK_STATS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tierstream::server {

struct WebhookStats {
  // Stable across restarts and reorderings of the config: a hash of the
  // url and the filters (the X-Tierstream-Webhook header).
  std::string id;
  std::string url;
  // Every change up to this cursor was delivered (or did not pass the
  // filter); the delivery resumes after it after a restart.
  uint64_t position = 0;
  // The feed's end minus position: an upper bound of the changes still to
  // deliver (it counts changes the filter drops, and cursor holes).
  uint64_t lag_changes = 0;
  // Age of the oldest change read and not yet delivered (wall clock since
  // it was written; 0 while none is waiting).
  double lag_seconds = 0;
  uint64_t consecutive_failures = 0;  // of the batch being sent now
  uint64_t failures_total = 0;        // failed POSTs since start
  uint64_t delivered_batches = 0;     // answered 2xx since start
  uint64_t delivered_changes = 0;
  // Changes retention removed before they were delivered (an upper bound,
  // like lag_changes): the receiver was down longer than the feed keeps them.
  uint64_t skipped_changes = 0;
  std::string last_error;  // the last failure since start ("" if none)
  // When the oldest change waiting (pending or being sent) was written, in
  // wall-clock ms (0: none); lag_seconds is derived from it.
  int64_t oldest_waiting_ms = 0;
};

// Where the HTTP API gets them from (thread-safe; empty: no webhooks).
using WebhookStatsFn = std::function<std::vector<WebhookStats>()>;

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_WEBHOOK_STATS_H_
