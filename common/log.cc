// Formats and writes the process's log lines to stderr.
#include "common/log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace tierstream {

namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO";
}

}  // namespace

std::string FormatLogTimestamp(int64_t unix_ms) {
  int64_t secs = unix_ms / 1000;
  int64_t ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];  // room for any int fields, to keep -Wformat-truncation quiet
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void LogV(LogLevel level, const char* fmt, va_list args) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::string line = FormatLogTimestamp(now_ms);
  line += ' ';
  line += LevelName(level);
  line += ' ';
  const size_t head = line.size();
  char small[512];
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(small, sizeof small, fmt, copy);
  va_end(copy);
  if (n < 0) return;
  if (static_cast<size_t>(n) < sizeof small) {
    line.append(small, static_cast<size_t>(n));
  } else {
    line.resize(head + static_cast<size_t>(n) + 1);
    std::vsnprintf(line.data() + head, static_cast<size_t>(n) + 1, fmt, args);
    line.resize(head + static_cast<size_t>(n));
  }
  if (line.back() != '\n') line.push_back('\n');
  // One write(2) per line: stdio's stderr is unbuffered and would split a
  // line into several writes that other threads' lines could land between.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t w = ::write(STDERR_FILENO, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // nowhere to report a failing stderr
    p += w;
    left -= static_cast<size_t>(w);
  }
}

void Log(LogLevel level, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  LogV(level, fmt, args);
  va_end(args);
}

}  // namespace tierstream
