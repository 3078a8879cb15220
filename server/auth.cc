// Checks bearer tokens, without leaking their bytes through timing.
#include "server/auth.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <array>

namespace tierstream::server {

namespace {

// ASCII case-insensitive: whether `text` starts with `prefix` (lower case).
bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<unsigned char>(diff | (a[i] ^ b[i % (b.empty() ? 1 : b.size())]));
  }
  return diff == 0 && !b.empty();
}

bool BearerMatches(std::string_view value, const std::string& token) {
  constexpr std::string_view kScheme = "bearer ";
  if (!StartsWithNoCase(value, kScheme)) return false;
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return ConstantTimeEquals(value, token);
}

bool PresentsToken(int fd, bool http, const std::string& token) {
  std::array<char, 4096> buf;
  const ssize_t got = ::recv(fd, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
  if (got <= 0) return false;
  std::string_view data(buf.data(), static_cast<size_t>(got));
  if (!http) {
    std::string_view line = data.substr(0, data.find('\n'));
    if (line.size() == data.size()) return false;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return ConstantTimeEquals(line, "AUTH " + token);
  }
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return false;
  std::string_view header = data.substr(0, end + 2);
  header.remove_prefix(std::min(header.size(), header.find("\r\n") + 2));  // the request line
  constexpr std::string_view kName = "authorization:";
  while (!header.empty()) {
    const size_t eol = header.find("\r\n");
    std::string_view field = header.substr(0, eol);
    header.remove_prefix(std::min(header.size(), eol + 2));
    if (!StartsWithNoCase(field, kName)) continue;
    std::string_view value = field.substr(kName.size());
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    return BearerMatches(value, token);
  }
  return false;
}

}  // namespace tierstream::server
