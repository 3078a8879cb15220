// GenerateStream: a realistic synthetic event stream of a social-commerce
// community for demos, tests and benchmarks — heavy-tailed member activity,
// joins with referrals, leaves and re-joins, orders with refunds, RFC 3339
// and integer timestamps, plus a configurable share of out-of-order,
// duplicated and invalid lines. Deterministic for given options; memory is
// O(users), never O(events). Thread safety: thread-safe (no shared state).
#ifndef TIERSTREAM_TOOLS_GEN_H_
#define TIERSTREAM_TOOLS_GEN_H_

#include <cstdint>
#include <cstdio>

#include "common/status.h"

namespace tierstream::tools {

struct GenOptions {
  uint64_t users = 1000;
  int days = 30;  // event time spans this many days before end_ms
  uint64_t seed = 1;
  uint64_t events = 0;             // lines to write; 0 = users * 10
  int64_t end_ms = 1763999999999;  // 2025-11-24T23:59:59.999+08:00
  double duplicate_rate = 0.01;    // lines repeating an earlier line byte for byte
  double disorder_rate = 0.02;     // lines moved up to 3 days back in time
  double invalid_rate = 0.0;       // deliberately invalid lines
  // Scenario "midnight": `users` members all join on one day, and exactly
  // new_days (30) later `events` messages arrive from them, spread over the
  // hour around that day's midnight (the end of the stream): at midnight
  // every one of them leaves tier `new` at once.
  bool midnight = false;
};

// Checks what the command line can get wrong: rates in 0..1, at least one
// user and one day, a stream inside the valid ts range. The error names the
// flag ("--days: must be at least 1, got 0").
Status ValidateGenOptions(const GenOptions& options);

// Writes the stream to `out`; false on a write error.
bool GenerateStream(const GenOptions& options, std::FILE* out);

}  // namespace tierstream::tools

#endif  // TIERSTREAM_TOOLS_GEN_H_
