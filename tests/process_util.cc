#include "tests/process_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/test_util.h"
#include "tools/client.h"

extern char** environ;

namespace tierstream::testing {

namespace {

// SIGTERM to *pid (if running), reaped; its wait status, or -1.
int TerminateChild(pid_t* pid) {
  int status = -1;
  if (*pid > 0) {
    ::kill(*pid, SIGTERM);
    ::waitpid(*pid, &status, 0);
    *pid = -1;
  }
  return status;
}

}  // namespace

const char* TierstreamBinary() {
  const char* bin = std::getenv("TIERSTREAM_BIN");
  return bin != nullptr ? bin : TIERSTREAM_BIN_DEFAULT;
}

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

ServerProcess::ServerProcess(const std::string& data_dir, std::vector<std::string> extra,
                             std::string log_path)
    : data_dir_(data_dir), extra_(std::move(extra)), log_path_(std::move(log_path)) {
  http_ = "127.0.0.1:" + std::to_string(FreePort());
  tcp_ = "127.0.0.1:" + std::to_string(FreePort());
  Start();
}

ServerProcess::~ServerProcess() { Kill(); }

bool ServerProcess::Start() {
  Kill();
  ready_ = false;
  const char* bin = TierstreamBinary();
  std::vector<std::string> args = {bin, "serve", "--data", data_dir_, "--http", http_};
  // The Kafka mode's shards are the topic's partitions.
  for (const char* a : {"--tcp", tcp_.c_str()}) args.emplace_back(a);
  if (std::find(extra_.begin(), extra_.end(), "--kafka") == extra_.end()) {
    for (const char* a : {"--shards", "2"}) args.emplace_back(a);
  }
  args.insert(args.end(), extra_.begin(), extra_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (log_path_.empty()) {
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
  }
  int rc = posix_spawn(&pid_, bin, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    return false;
  }
  for (int i = 0; i < 1500; ++i) {
    // /healthz answers during recovery too ("starting"); the server is up
    // once it is past that (ready, or degraded: ingest refused).
    auto r = tools::HttpRequest(http_, "GET", "/healthz", {}, 2);
    if (r.ok() && r->status == 200 && r->body.find("\"starting\"") == std::string::npos) {
      ready_ = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ready_;
}

void ServerProcess::Kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

int ServerProcess::Terminate() { return TerminateChild(&pid_); }

KafkaMockProcess::KafkaMockProcess(int brokers, const std::vector<std::string>& topics) {
  const char* bin = TierstreamBinary();
  std::vector<std::string> args = {bin, "kafka-mock", "--brokers", std::to_string(brokers)};
  for (const std::string& t : topics) {
    args.push_back("--topic");
    args.push_back(t);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (::pipe(out) != 0) return;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const int rc = posix_spawn(&pid_, bin, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    pid_ = -1;
    ::close(out[0]);
    return;
  }
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);  // later lines: none are printed
  if (size_t nl = line.find('\n'); nl != std::string::npos) bootstraps_ = line.substr(0, nl);
}

KafkaMockProcess::~KafkaMockProcess() { Terminate(); }

int KafkaMockProcess::Terminate() { return TerminateChild(&pid_); }

int RunTool(const std::vector<std::string>& args) {
  ToolRun run = RunToolCaptured(args);
  // The tool's own codes are 0..2; anything else (a sanitizer's report exits
  // 66, a crash -1) is unexpected, and its stderr says why: keep it in the
  // test's output.
  if (run.exit_code < 0 || run.exit_code > 2) {
    std::fprintf(stderr, "tierstream %s exited %d; its stderr:\n%s\n",
                 args.empty() ? "" : args[0].c_str(), run.exit_code, run.err.c_str());
  }
  return run.exit_code;
}

ToolRun RunToolCaptured(const std::vector<std::string>& args, bool stderr_tty) {
  ToolRun run;
  TempDir dir;  // stdout (and stderr) go to files: no pipe to fill up and block on
  const std::string out_path = dir.path() + "/out", err_path = dir.path() + "/err";
  const char* bin = TierstreamBinary();
  std::vector<std::string> all = {bin};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int master = -1;
  std::string slave;
  if (stderr_tty) {
    master = ::posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return run;
    slave = ::ptsname(master);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  if (stderr_tty) {
    posix_spawn_file_actions_addopen(&actions, 2, slave.c_str(), O_RDWR | O_NOCTTY, 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  pid_t pid;
  int rc = posix_spawn(&pid, bin, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    if (master >= 0) ::close(master);
    return run;
  }
  int status = 0;
  if (stderr_tty) {
    // Drain the terminal while the tool runs: a full terminal buffer would
    // block its writes.
    char buf[4096];
    bool exited = false;
    for (;;) {
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n > 0) {
          run.err.append(buf, static_cast<size_t>(n));
          continue;
        }
        if (exited) break;  // EIO: the tool is gone and nothing is left
      } else if (exited) {
        break;
      }
      if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) exited = true;
    }
    ::close(master);
  } else {
    ::waitpid(pid, &status, 0);
    run.err = ReadFile(err_path);
  }
  run.out = ReadFile(out_path);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

long StatusKb(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + field.size());
  }
  return -1;
}

int ConnectLoopback(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

uint64_t Field(const std::string& json, const char* key) {
  size_t at = json.find(std::string("\"") + key + "\":");
  if (at == std::string::npos) return UINT64_MAX;
  return std::strtoull(json.c_str() + at + std::strlen(key) + 3, nullptr, 10);
}

std::string FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/" + name;
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

ShellRun Shell(const std::string& script) {
  ShellRun run;
  FILE* p = ::popen(("bash -o pipefail -c '" + script + "' 2>&1").c_str(), "r");
  if (p == nullptr) return run;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) run.output.append(buf, n);
  const int status = ::pclose(p);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace tierstream::testing
