// Draws the one-line progress display of offline commands on a terminal.
#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tierstream::tools {

namespace {

// 1234567 -> "1,234,567": counts of millions are read at a glance.
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// 75 -> "1:15", 3725 -> "1:02:05".
std::string Duration(double seconds) {
  const auto s = static_cast<uint64_t>(std::llround(std::max(seconds, 0.0)));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s / 60 % 60),
                  static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llu:%02llu", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  }
  return buf;
}

}  // namespace

Progress::Progress(std::string label, uint64_t total, std::string count_noun, std::string rate_noun,
                   bool enabled)
    : label_(std::move(label)),
      total_(total),
      count_noun_(std::move(count_noun)),
      rate_noun_(std::move(rate_noun)),
      enabled_(enabled) {}

Progress::~Progress() {
  if (drawn_ && !finished_) std::fputc('\n', stderr);
}

bool Progress::StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

std::string Progress::Render(uint64_t position, uint64_t count, double seconds, bool final) const {
  std::string line = label_ + ": " + Grouped(count) + " " + count_noun_;
  const double rate = seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
  line += ", " + Grouped(static_cast<uint64_t>(rate)) + " " + rate_noun_ + "/s";
  if (total_ > 0) {
    const double fraction =
        std::min(1.0, static_cast<double>(position) / static_cast<double>(total_));
    char pct[16];
    if (final || fraction >= 1.0) {
      std::snprintf(pct, sizeof pct, "100%%");
    } else {
      // Never "100.0%" before the end.
      std::snprintf(pct, sizeof pct, "%.1f%%", std::min(std::floor(fraction * 1000) / 10, 99.9));
    }
    line += ", ";
    line += pct;
    if (!final && position > 0) {
      const double left = seconds * static_cast<double>(total_ - std::min(position, total_)) /
                          static_cast<double>(position);
      line += ", ETA " + Duration(left);
    }
  }
  if (final) {
    char took[32];
    std::snprintf(took, sizeof took, ", %.1f s", seconds);
    line += took;
  }
  return line;
}

void Progress::Update(uint64_t position, uint64_t count) {
  if (!enabled_ || finished_) return;
  const auto now = Clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(250)) return;
  last_draw_ = now;
  Draw(Render(position, count, std::chrono::duration<double>(now - start_).count(), false), false);
}

void Progress::Finish(uint64_t position, uint64_t count) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  Draw(Render(position, count, seconds, true), true);
}

void Progress::Draw(const std::string& line, bool final) {
  // "\033[K" clears what a longer previous line left to the right.
  std::string out = "\r" + line + "\033[K";
  if (final) out += '\n';
  drawn_ = true;
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

}  // namespace tierstream::tools
