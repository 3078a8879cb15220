// Log: the process's one log sink. Each call writes one line to stderr,
//
//   2025-11-24T08:00:00.123Z INFO tierstream: recovered 9783 users ...
//
// an ISO-8601 UTC wall-clock timestamp with milliseconds (so that lines of a
// server's log can be put next to other systems' logs and ordered), the
// level, then the printf-formatted message. Lines keep the "tierstream: "
// prefix of the messages they replaced, so greps of older logs still match.
//
// Thread safety: thread-safe. A line is formatted in the caller's buffer and
// written with a single write(2), so lines of concurrent threads never
// interleave; a trailing newline is added when the message has none.
#ifndef TIERSTREAM_COMMON_LOG_H_
#define TIERSTREAM_COMMON_LOG_H_

#include <cstdarg>
#include <cstdint>
#include <string>

namespace tierstream {

enum class LogLevel { kInfo, kWarning, kError };

void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void LogV(LogLevel level, const char* fmt, va_list args) __attribute__((format(printf, 2, 0)));

// The timestamp of a log line: "2025-11-24T08:00:00.123Z" for `unix_ms`.
std::string FormatLogTimestamp(int64_t unix_ms);

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_LOG_H_
