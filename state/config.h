// Config: the domain settings of SPEC §2–§4 that an operator may change —
// the time zone, the tier thresholds and the duplicate horizon — the change
// feed's retention and its webhooks, and their loading from a JSON file.
// Plain value; const-safe.
#ifndef TIERSTREAM_STATE_CONFIG_H_
#define TIERSTREAM_STATE_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace tierstream::state {

// SPEC §3 tier thresholds; defaults are the SPEC's.
struct TierRules {
  int64_t high_value_spend_fen = 50'000;  // spend_30d >= 500.00 yuan
  int64_t high_value_repeat_orders = 3;   // repeat_orders >= 3
  int32_t new_days = 30;                  // D - day(joined_at) < 30
  int64_t active_interactions_7d = 3;     // interactions_7d >= 3
};

// The change feed's retention: a change is kept while it is within
// retain_days of event time behind T, or less than retain_wall_ms old by the
// wall clock (a backfill races T forward; its consumers still get it all) —
// and, whatever its age, only while the feed fits in max_bytes.
struct ChangeLogConfig {
  bool enabled = true;
  int32_t retain_days = 30;
  int64_t retain_wall_ms = 24 * 3'600'000;
  uint64_t max_bytes = 1ull << 30;
};

// A webhook (server/webhooks.h): the feed's changes that pass its filter,
// POSTed in batches to `url`. `to`/`from` have the bits of
// pipeline::ChangeFilter (bit i for Tier(i); in `from`, bit kNone for a
// first tier), normalised: all tiers is kAnyTo / kAnyFrom, whichever way it
// was written, so that the same filter always names the same webhook.
struct WebhookConfig {
  static constexpr uint32_t kAnyTo = 0x3f;    // the six tiers (config.cc checks kTierCount)
  static constexpr uint32_t kAnyFrom = 0x7f;  // and kNone
  std::string url;                            // as written: "http://host[:port]/path"
  std::string host;
  uint16_t port = 80;
  std::string target = "/";
  uint32_t to = kAnyTo;
  uint32_t from = kAnyFrom;
  std::string secret_file;  // read when the webhooks start
  uint32_t max_batch = 100;
  int64_t max_delay_ms = 1000;
  int64_t timeout_ms = 10'000;  // of one POST, connecting included
};

struct Config {
  int64_t utc_offset_ms = 8 * 3'600'000;  // +08:00
  TierRules rules;
  // Event ids are remembered for at least this many days of event time
  // (SPEC §4 requires 7).
  int32_t dedup_horizon_days = 8;
  // An event whose ts is more than this ahead of the server's wall clock is
  // rejected (one mistyped year must not move T); 0 turns the guard off,
  // for simulations of the future.
  int64_t max_future_ms = 86'400'000;
  ChangeLogConfig changes;
  std::vector<WebhookConfig> webhooks;
};

// Reads a JSON config file:
//   {"tz": "+08:00",
//    "tiers": {"high_value_spend": 500, "high_value_repeat_orders": 3,
//              "new_days": 30, "active_interactions_7d": 3},
//    "dedup_horizon_days": 8, "max_future_ms": 86400000,
//    "changes": {"enabled": true, "retain_days": 30, "retain_hours": 24, "max_mb": 1024},
//    "webhooks": [{"url": "http://127.0.0.1:9000/tiers", "to": ["dormant"],
//                  "from": ["active", "null"], "secret_file": "/etc/tierstream/hook.secret",
//                  "max_batch": 100, "max_delay_ms": 1000, "timeout_ms": 10000}]}
// Every key is optional; unknown keys are an error (a typo must not be silently ignored).
Result<Config> LoadConfigFile(const std::string& path);
Result<Config> ParseConfig(std::string_view json);

}  // namespace tierstream::state

#endif  // TIERSTREAM_STATE_CONFIG_H_
