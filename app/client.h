// Small blocking clients of a running server, for the CLI (`send`, `user`,
// `kpis`) and the integration tests. Thread safety: thread-safe (no shared state).
#ifndef TIERSTREAM_APP_CLIENT_H_
#define TIERSTREAM_APP_CLIENT_H_

#include <string>
#include <string_view>

#include "common/status.h"

namespace tierstream::app {

struct HttpResult {
  int status = 0;
  std::string body;
};

// One HTTP/1.1 request to "host:port"; `body` is sent when non-empty or method is POST.
// `token`, when set, is sent as "Authorization: Bearer TOKEN".
Result<HttpResult> HttpRequest(const std::string& address, const std::string& method,
                               const std::string& target, std::string_view body = {},
                               int timeout_seconds = 120, const std::string& token = {});

// Streams `data` to the TCP ingest port, shuts down the sending side and
// returns the server's summary line.
// `token`, when set, is sent first as the line "AUTH TOKEN".
Result<std::string> TcpSend(const std::string& address, std::string_view data,
                            int timeout_seconds = 600, const std::string& token = {});

// Reads a token file (the token is its first line, surrounding blanks trimmed).
Result<std::string> ReadTokenFile(const std::string& path);

// Percent-encodes a path segment.
std::string UrlEncode(std::string_view s);

}  // namespace tierstream::app

#endif  // TIERSTREAM_APP_CLIENT_H_
