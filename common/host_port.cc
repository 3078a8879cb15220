// Parses the "host:port" addresses of the command line and webhook URLs.
#include "common/host_port.h"

#include <charconv>
#include <utility>

namespace tierstream {

bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size()) return false;
  std::string h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned p = 0;
  auto r = std::from_chars(address.data() + colon + 1, address.data() + address.size(), p);
  if (r.ec != std::errc() || r.ptr != address.data() + address.size() || p > 65535) return false;
  *host = h.empty() ? "0.0.0.0" : h;
  *port = static_cast<uint16_t>(p);
  return true;
}

bool ParseHttpUrl(std::string_view url, HttpUrl* out, std::string* error) {
  constexpr std::string_view kScheme = "http://";
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      *error = "must not contain spaces or control characters";
      return false;
    }
  }
  if (url.substr(0, 8) == "https://") {
    *error = "https is not supported (tierstream speaks no TLS): use http:// to a local proxy";
    return false;
  }
  if (url.substr(0, kScheme.size()) != kScheme) {
    *error = "must start with http://";
    return false;
  }
  url.remove_prefix(kScheme.size());
  const size_t slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  const std::string_view target = slash == std::string_view::npos ? "/" : url.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    *error = "must not contain user information (user@host)";
    return false;
  }
  if (target.find('#') != std::string_view::npos) {
    *error = "must not contain a fragment (#)";
    return false;
  }
  HttpUrl u;
  u.target = std::string(target);
  // A port follows the last ':' unless that is inside an IPv6 literal's brackets.
  const size_t colon = authority.rfind(':');
  const size_t bracket = authority.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    if (!SplitHostPort(std::string(authority), &u.host, &u.port) || colon == 0 || u.port == 0) {
      *error = "port: must be a number in 1..65535 after the host";
      return false;
    }
  } else {
    u.host = std::string(authority);
    if (u.host.size() >= 2 && u.host.front() == '[' && u.host.back() == ']') {
      u.host = u.host.substr(1, u.host.size() - 2);
    }
  }
  if (u.host.empty()) {
    *error = "no host";
    return false;
  }
  *out = std::move(u);
  return true;
}

}  // namespace tierstream
