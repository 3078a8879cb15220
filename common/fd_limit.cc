// Reads and raises the open-file limit and counts the descriptors in use.
#include "common/fd_limit.h"

#include <dirent.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

namespace tierstream {

namespace {

uint64_t FromRlim(rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(v); }

}  // namespace

FdLimit CurrentFdLimit() {
  FdLimit limit;
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0) {
    limit.soft = FromRlim(r.rlim_cur);
    limit.hard = FromRlim(r.rlim_max);
  }
  limit.raised_from = limit.soft;
  return limit;
}

FdLimit RaiseFdLimit() {
  FdLimit limit = CurrentFdLimit();
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == r.rlim_max) return limit;
  rlim_t target = r.rlim_max;
  if (target == RLIM_INFINITY) {
    // Linux refuses a soft limit above fs.nr_open.
    target = 1u << 20;
    if (FILE* f = std::fopen("/proc/sys/fs/nr_open", "r")) {
      unsigned long long nr_open = 0;
      if (std::fscanf(f, "%llu", &nr_open) == 1 && nr_open > 0) {
        target = static_cast<rlim_t>(nr_open);
      }
      std::fclose(f);
    }
  }
  if (target <= r.rlim_cur) return limit;
  r.rlim_cur = target;
  if (::setrlimit(RLIMIT_NOFILE, &r) != 0) return limit;
  const uint64_t before = limit.soft;
  limit = CurrentFdLimit();
  limit.raised_from = before;
  return limit;
}

namespace {

// Open descriptors, and how many of them are numbered below `below`; false
// when /proc/self/fd cannot be read.
bool CountFds(uint64_t below, uint64_t* open, uint64_t* open_below) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  const int own = ::dirfd(dir);
  *open = *open_below = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const long fd = std::strtol(e->d_name, nullptr, 10);
    if (fd == own) continue;
    ++*open;
    if (static_cast<uint64_t>(fd) < below) ++*open_below;
  }
  ::closedir(dir);
  return true;
}

}  // namespace

uint64_t OpenFdCount() {
  uint64_t open = 0, below = 0;
  return CountFds(0, &open, &below) ? open : UINT64_MAX;
}

uint64_t FreeFds() {
  // The limit bounds descriptor numbers, not their count: a descriptor
  // inherited with a number above it takes nothing from what is left.
  const uint64_t soft = CurrentFdLimit().soft;
  uint64_t open = 0, below = 0;
  if (!CountFds(soft, &open, &below) || below >= soft) return 0;
  return soft - below;
}

}  // namespace tierstream
