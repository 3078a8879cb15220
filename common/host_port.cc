// Parses the "host:port" addresses of the command line.
#include "common/host_port.h"

#include <charconv>

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

}  // namespace tierstream
