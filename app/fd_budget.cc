// Plans serve's file descriptors against the open-file limit.
#include "app/fd_budget.h"

#include <algorithm>

namespace tierstream::app {

namespace {

// Each io thread's io_context holds an epoll descriptor, an eventfd and a
// timerfd; besides them: the two listeners, the signal pipe (two), the
// reject log and a few more; and with webhooks, their io_context's three
// and a connection each.
uint64_t ServerFds(int io_threads, int webhooks) {
  const uint64_t hooks = static_cast<uint64_t>(std::max(webhooks, 0));
  return 3 * static_cast<uint64_t>(std::max(io_threads, 1)) + 8 + (hooks > 0 ? 3 + hooks : 0);
}

std::string LimitText(uint64_t v) { return v == UINT64_MAX ? "unlimited" : std::to_string(v); }

// "N connections + P health probes + S for RocksDB + F for the server + R spare"
std::string Parts(const FdBudgetInput& in, uint64_t server_fds, uint64_t connections) {
  return std::to_string(connections) + " connections + " + std::to_string(in.probe_connections) +
         " health probes + " + std::to_string(in.store_fds) + " for RocksDB + " +
         std::to_string(in.open_at_start + server_fds) + " for the server + " +
         std::to_string(kFdReserve) + " spare";
}

}  // namespace

std::string FdBudget::Describe(const FdBudgetInput& in) const {
  return Parts(in, server_fds, static_cast<uint64_t>(max_connections));
}

Result<FdBudget> PlanFds(const FdBudgetInput& in) {
  FdBudget b;
  b.server_fds = ServerFds(in.io_threads, in.webhooks);
  const uint64_t fixed = in.open_at_start + b.server_fds + in.store_fds + kFdReserve +
                         static_cast<uint64_t>(std::max(in.probe_connections, 0));
  const uint64_t wanted = static_cast<uint64_t>(std::max(in.max_connections, 0));
  b.needed = fixed + wanted;
  const uint64_t room = in.limit > fixed ? in.limit - fixed : 0;
  if (wanted <= room) {
    b.max_connections = in.max_connections;
    return b;
  }
  const std::string why = Parts(in, b.server_fds, wanted) + " need " + std::to_string(b.needed) +
                          "; raise the limit (ulimit -n; systemd: LimitNOFILE=) to at least " +
                          std::to_string(b.needed);
  const std::string limit =
      std::to_string(in.limit) + " (hard limit " + LimitText(in.hard_limit) + ")";
  if (room == 0) {
    return Status::InvalidArgument("the open-file limit " + limit +
                                   " leaves no descriptor for connections: " + why);
  }
  if (in.max_connections_given) {
    return Status::InvalidArgument(
        "--max-connections " + std::to_string(wanted) + " does not fit in the open-file limit " +
        limit + ": " + why + ", or pass --max-connections " + std::to_string(room) + " or less");
  }
  b.max_connections = static_cast<int>(std::min<uint64_t>(room, INT32_MAX));
  b.lowered = true;
  return b;
}

}  // namespace tierstream::app
