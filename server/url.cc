// Decodes the percent-encoded parts of request targets.
#include "server/url.h"

namespace tierstream::server {

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '%') {
      out->push_back(c);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int v = 0;
    for (int k = 1; k <= 2; ++k) {
      char h = in[i + static_cast<size_t>(k)];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= h - '0';
      else if (h >= 'a' && h <= 'f')
        v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        v |= h - 'A' + 10;
      else
        return false;
    }
    out->push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view key,
                                      bool* malformed) {
  *malformed = false;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      std::string value;
      std::string_view raw = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
      std::string plus_decoded(raw);
      for (char& c : plus_decoded) c = c == '+' ? ' ' : c;
      if (!PercentDecode(plus_decoded, &value)) {
        *malformed = true;
        return std::nullopt;
      }
      return value;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace tierstream::server
