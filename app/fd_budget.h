// The file descriptors of `tierstream serve`, budgeted against the
// process's open-file limit (RLIMIT_NOFILE) at start.
//
// Every connection holds a descriptor, and so does each file RocksDB keeps
// open: when connections take the last ones, RocksDB cannot create its next
// WAL or table and the database refuses every write after it. So the
// connections serve accepts (--max-connections, plus the HTTP connections
// beyond it that may only ask for /healthz and /readyz) must fit beside the
// store's files (state::kStoreMaxFds), the server's own descriptors and a
// spare reserve. When they do not, a --max-connections left at its default
// is lowered to what fits (with a warning); one given explicitly is an error
// that names the flag and the numbers: an operator who asked for it expects
// it to hold.
//
// Thread safety: const-safe (pure functions).
#ifndef TIERSTREAM_APP_FD_BUDGET_H_
#define TIERSTREAM_APP_FD_BUDGET_H_

#include <cstdint>
#include <string>

#include "common/status.h"

namespace tierstream::app {

// Descriptors kept spare for what is opened for a moment: connections
// refused as busy while they close, name lookups, the reject log's
// rotation, and opening a failed database again.
inline constexpr uint64_t kFdReserve = 64;

struct FdBudgetInput {
  uint64_t limit = 0;          // the soft RLIMIT_NOFILE serve runs with (after raising it)
  uint64_t hard_limit = 0;     // for the message (UINT64_MAX: unlimited)
  uint64_t open_at_start = 0;  // descriptors already open (stdio, inherited)
  int io_threads = 1;
  int max_connections = 0;
  bool max_connections_given = false;  // on the command line, not the default
  int probe_connections = 0;           // the HTTP connections beyond max_connections
  uint64_t store_fds = 0;              // what the store may hold (state::kStoreMaxFds)
  int webhooks = 0;                    // each holds a connection to its receiver
};

struct FdBudget {
  int max_connections = 0;  // what serve accepts: the input's, or lowered to fit
  bool lowered = false;
  uint64_t server_fds = 0;  // listeners, io_contexts, signals, the reject log, webhooks
  uint64_t needed = 0;      // every part, at the input's max_connections
  // How the limit is shared out: "1024 connections + 16 health probes + ...".
  std::string Describe(const FdBudgetInput& in) const;
};

// Shares the limit out, or says why it cannot: InvalidArgument naming
// --max-connections and the numbers.
Result<FdBudget> PlanFds(const FdBudgetInput& in);

}  // namespace tierstream::app

#endif  // TIERSTREAM_APP_FD_BUDGET_H_
