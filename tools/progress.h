// Progress: one status line on the terminal for long offline commands
// (`replay`, `verify`), e.g.
//
//   replay: 4,210,000 lines, 1,402,311 events/s, 42.1%, ETA 0:04
//
// rewritten in place with '\r' at most four times a second, and finished
// with a newline. When stderr is not a terminal (a log file, a pipe, CI) it
// prints nothing, so that logs and captured output stay clean.
//
// Thread safety: confined (one thread calls Update and Finish).
#ifndef TIERSTREAM_TOOLS_PROGRESS_H_
#define TIERSTREAM_TOOLS_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace tierstream::tools {

class Progress {
 public:
  // `label` starts the line; `total` is the amount `Update`'s `position`
  // goes up to (bytes of the input files; 0 when unknown, as for stdin: then
  // no percentage and no ETA); `count_noun` names what `count` counts
  // ("lines") and `rate_noun` what the rate counts ("events").
  Progress(std::string label, uint64_t total, std::string count_noun, std::string rate_noun,
           bool enabled = StderrIsTerminal());
  // Ends a line left unfinished (an early return), so that what is
  // printed next starts on a line of its own.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Redraws the line if the last redraw is at least 250 ms old.
  void Update(uint64_t position, uint64_t count);
  // Draws the final line (with the time taken) and ends it; once.
  void Finish(uint64_t position, uint64_t count);

  bool enabled() const { return enabled_; }
  static bool StderrIsTerminal();

  // The text of the line, without '\r' (for tests).
  std::string Render(uint64_t position, uint64_t count, double seconds, bool final) const;

 private:
  using Clock = std::chrono::steady_clock;
  void Draw(const std::string& line, bool final);

  std::string label_;
  uint64_t total_;
  std::string count_noun_;
  std::string rate_noun_;
  bool enabled_;
  bool finished_ = false;
  bool drawn_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_ = start_;
};

}  // namespace tierstream::tools

#endif  // TIERSTREAM_TOOLS_PROGRESS_H_
