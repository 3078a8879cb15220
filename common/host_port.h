// SplitHostPort: the "host:port" address syntax shared by the listeners
// (server/) and the clients (tools/), which must not depend on each other.
// Thread safety: const-safe (a pure function).
#ifndef TIERSTREAM_COMMON_HOST_PORT_H_
#define TIERSTREAM_COMMON_HOST_PORT_H_

#include <cstdint>
#include <string>

namespace tierstream {

// Splits "host:port" (IPv6 as "[::1]:8080"; an empty host is "0.0.0.0").
// False when there is no port or it is not a number in 0..65535.
[[nodiscard]] bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port);

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_HOST_PORT_H_
