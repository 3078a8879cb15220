// Synthetic events for the micro-benchmarks: an EventList owns the strings
// its Events borrow (as a Batch's arena does in the pipeline). Plain value;
// confined.
#ifndef TIERSTREAM_BENCH_SYNTHETIC_EVENTS_H_
#define TIERSTREAM_BENCH_SYNTHETIC_EVENTS_H_

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "ingest/event.h"
#include "state/config.h"

namespace tierstream::bench {

// 2025-11-24T00:00:00+08:00: the start of a day in the default offset.
inline constexpr int64_t kStartMs = 1763913600000;

// "u0000042": fixed width, so ids sort like their numbers.
inline std::string UserId(int64_t i) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "u%07lld", static_cast<long long>(i));
  return buf;
}

// The day of `ts_ms` in the default configuration's offset.
inline int32_t DayOfDefault(int64_t ts_ms) { return DayOf(ts_ms, state::Config{}.utc_offset_ms); }

class EventList {
 public:
  // Appends an event with a fresh event id; its strings are copied here.
  ingest::Event& Add(ingest::EventType type, std::string_view user_id, int64_t ts_ms,
                     int64_t amount_fen = 0, std::string_view referrer_id = {}) {
    ingest::Event e;
    e.type = type;
    e.event_id = Keep(std::string("ev-").append(std::to_string(events_.size())));
    e.user_id = Keep(std::string(user_id));
    if (!referrer_id.empty()) e.referrer_id = Keep(std::string(referrer_id));
    e.ts_ms = ts_ms;
    e.amount_fen = amount_fen;
    events_.push_back(e);
    return events_.back();
  }
  const std::vector<ingest::Event>& events() const { return events_; }
  size_t size() const { return events_.size(); }

 private:
  std::string_view Keep(std::string s) {
    strings_.push_back(std::move(s));  // a deque: earlier strings never move
    return strings_.back();
  }

  std::deque<std::string> strings_;
  std::vector<ingest::Event> events_;
};

}  // namespace tierstream::bench

#endif  // TIERSTREAM_BENCH_SYNTHETIC_EVENTS_H_
