// Helpers for tests that drive real `tierstream` processes: a server that
// can be killed and restarted on the same ports, one-shot tool runs, and a
// field reader for the JSON answers.
#ifndef TIERSTREAM_TESTS_PROCESS_UTIL_H_
#define TIERSTREAM_TESTS_PROCESS_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tierstream::testing {

// The tierstream binary under test ($TIERSTREAM_BIN overrides the build's).
const char* TierstreamBinary();
uint16_t FreePort();

// `tierstream serve` on fresh loopback ports, with --shards 2 and `extra`
// (in the Kafka mode, `extra` holding "--kafka": no --shards, no --tcp).
// Its stderr goes to `log_path` (appended) or /dev/null.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& data_dir, std::vector<std::string> extra = {},
                         std::string log_path = "");
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts (again) on the same ports; true once recovery is over (/healthz
  // answers and is no longer "starting").
  bool Start();
  void Kill();      // SIGKILL and reap
  int Terminate();  // SIGTERM, reap, return the wait status
  bool ready() const { return ready_; }
  const std::string& http() const { return http_; }
  const std::string& tcp() const { return tcp_; }
  pid_t pid() const { return pid_; }

 private:
  std::string data_dir_;
  std::vector<std::string> extra_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool ready_ = false;
  std::string http_, tcp_;
};

// `tierstream kafka-mock --brokers N --topic T ...`, with the bootstrap
// address it prints first; SIGTERM'ed when destroyed.
class KafkaMockProcess {
 public:
  KafkaMockProcess(int brokers, const std::vector<std::string>& topics);
  ~KafkaMockProcess();
  KafkaMockProcess(const KafkaMockProcess&) = delete;
  KafkaMockProcess& operator=(const KafkaMockProcess&) = delete;

  // Empty if it did not start (or printed nothing within 30 s).
  const std::string& bootstraps() const { return bootstraps_; }
  int Terminate();  // SIGTERM, reap, return the wait status

 private:
  pid_t pid_ = -1;
  std::string bootstraps_;
};

// Runs `tierstream ARGS...` with output discarded, but for the stderr of a
// run that exits with a code other than the tool's own (0..2: a sanitizer's
// report, a crash), which is printed; returns the exit code.
int RunTool(const std::vector<std::string>& args);

// What a captured tool run printed.
struct ToolRun {
  int exit_code = -1;  // -1: did not exit normally (or could not start)
  std::string out;     // stdout
  std::string err;     // stderr
};
// Runs `tierstream ARGS...` and captures stdout and stderr. With
// `stderr_tty`, stderr is a pseudo-terminal, as when a person runs it (the
// terminal turns "\n" into "\r\n").
ToolRun RunToolCaptured(const std::vector<std::string>& args, bool stderr_tty = false);

// A figure of /proc/PID/status in kB ("VmRSS:", "VmSize:"); -1 if absent.
long StatusKb(pid_t pid, const std::string& field);
// The resident set of process `pid` in kB (VmRSS); -1 if unknown.
inline long RssKb(pid_t pid) { return StatusKb(pid, "VmRSS:"); }
// Its address space in kB (VmSize); -1 if unknown.
inline long VmSizeKb(pid_t pid) { return StatusKb(pid, "VmSize:"); }
// A blocking TCP connection to "127.0.0.1:PORT"; -1 on failure.
int ConnectLoopback(const std::string& address);

// The path of `name` on $PATH, or "".
std::string FindProgram(const std::string& name);

struct ShellRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};
// Runs `script` with bash (pipefail on), capturing what it prints. The
// script must not contain a single quote.
ShellRun Shell(const std::string& script);

// The unsigned integer after "key": in a flat JSON text; UINT64_MAX if absent.
uint64_t Field(const std::string& json, const char* key);

}  // namespace tierstream::testing

#endif  // TIERSTREAM_TESTS_PROCESS_UTIL_H_
