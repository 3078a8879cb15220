// SplitHostPort: the "host:port" address syntax shared by the listeners
// (server/) and the clients (tools/), which must not depend on each other;
// ParseHttpUrl: the http:// URLs of webhooks (state/config.cc checks them,
// server/ connects to them).
// Thread safety: const-safe (pure functions).
#ifndef TIERSTREAM_COMMON_HOST_PORT_H_
#define TIERSTREAM_COMMON_HOST_PORT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace tierstream {

// Splits "host:port" (IPv6 as "[::1]:8080"; an empty host is "0.0.0.0").
// False when there is no port or it is not a number in 0..65535.
[[nodiscard]] bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port);

// An http:// URL split for a client: "http://host[:port][/path[?query]]".
struct HttpUrl {
  std::string host;  // IPv6 without its brackets
  uint16_t port = 80;
  std::string target = "/";  // origin-form: the path and query
};
// Parses `url`; on failure returns false and says why in *error ("https is
// not supported", "no host", ...).
[[nodiscard]] bool ParseHttpUrl(std::string_view url, HttpUrl* out, std::string* error);

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_HOST_PORT_H_
