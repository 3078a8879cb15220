// Event-time helpers: the day of a timestamp in a fixed UTC offset, the valid
// ts range of SPEC §1, and RFC 3339 parsing. Pure functions; thread-safe.
#ifndef TIERSTREAM_COMMON_TIME_H_
#define TIERSTREAM_COMMON_TIME_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tierstream {

inline constexpr int64_t kMsPerDay = 86'400'000;
inline constexpr int64_t kMinTsMs = 946'684'800'000;    // 2000-01-01T00:00:00Z
inline constexpr int64_t kMaxTsMs = 4'102'444'800'000;  // 2100-01-01T00:00:00Z (exclusive)
inline constexpr int64_t kNoTs = INT64_MIN;             // "no such timestamp"
inline constexpr int32_t kNoDay = INT32_MIN;

// Day numbers are days since the Unix epoch in the configured offset.
// floor((ts_ms + offset_ms) / 86'400'000), SPEC §2.
inline int32_t DayOf(int64_t ts_ms, int64_t offset_ms) {
  int64_t x = ts_ms + offset_ms;
  int64_t d = x / kMsPerDay;
  if (x % kMsPerDay < 0) --d;
  return static_cast<int32_t>(d);
}

// The first ms of `day` (the inverse of DayOf at a day's start).
inline int64_t DayStartMs(int32_t day, int64_t offset_ms) {
  return int64_t{day} * kMsPerDay - offset_ms;
}

inline bool TsInRange(int64_t ts_ms) { return ts_ms >= kMinTsMs && ts_ms < kMaxTsMs; }

// Parses an RFC 3339 date-time ("2026-11-24T08:00:00+08:00", "...Z", an
// optional fraction of any length, truncated to milliseconds) into ms since
// the epoch. Returns nullopt when the text is not such a date-time.
std::optional<int64_t> ParseRfc3339(std::string_view text);

// Parses "+08:00", "-05:30", "Z" or "+0800" into an offset in ms.
std::optional<int64_t> ParseUtcOffset(std::string_view text);
std::string FormatUtcOffset(int64_t offset_ms);

// The calendar date of a day number, "2025-11-24" (proleptic Gregorian; the
// day is already in its offset).
std::string FormatDay(int32_t day);

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_TIME_H_
