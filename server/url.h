// The URL codec of the HTTP API: percent-decoding of path segments and
// query values. Thread safety: const-safe (pure functions).
#ifndef TIERSTREAM_SERVER_URL_H_
#define TIERSTREAM_SERVER_URL_H_

#include <optional>
#include <string>
#include <string_view>

namespace tierstream::server {

// Decodes %XX escapes into *out ('+' stays '+'); false on a malformed
// escape (a '%' not followed by two hex digits).
[[nodiscard]] bool PercentDecode(std::string_view in, std::string* out);

// The decoded value of the first `key` in a query string ("a=1&b=x%20y";
// '+' is a space, a key without '=' has the empty value), or nullopt if it
// is absent. Sets *malformed (and returns nullopt) when the value's
// percent-encoding is malformed.
std::optional<std::string> QueryParam(std::string_view query, std::string_view key,
                                      bool* malformed);

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_URL_H_
