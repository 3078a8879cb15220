// The process's open-file limit (RLIMIT_NOFILE) and how much of it is used.
//
// A server holds one file descriptor per connection beside RocksDB's files:
// when the soft limit is reached, RocksDB cannot create a file (a WAL, a
// table) and the database refuses every later write. serve raises the soft
// limit to the hard one at start and budgets it (app/fd_budget.h); the
// pipeline checks the headroom before it reopens a failed database.
//
// Thread safety: thread-safe (the kernel's).
#ifndef TIERSTREAM_COMMON_FD_LIMIT_H_
#define TIERSTREAM_COMMON_FD_LIMIT_H_

#include <cstdint>

namespace tierstream {

struct FdLimit {
  // The limit that applies (after RaiseFdLimit: the hard one, if it could be set).
  uint64_t soft = 0;
  uint64_t hard = 0;         // UINT64_MAX: unlimited
  uint64_t raised_from = 0;  // the soft limit before RaiseFdLimit
};

// The current limits.
FdLimit CurrentFdLimit();
// Raises the soft limit to the hard one (to the kernel's nr_open when the
// hard limit is unlimited). On failure the limit stays as it was.
FdLimit RaiseFdLimit();
// File descriptors open in this process (/proc/self/fd); UINT64_MAX when it
// cannot be read — as when no descriptor is left to read it with.
uint64_t OpenFdCount();
// Descriptors that may still be opened: the soft limit minus the open
// descriptors numbered below it (the limit bounds numbers; 0 when
// /proc/self/fd cannot be read).
uint64_t FreeFds();

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_FD_LIMIT_H_
