// Small blocking clients of a running server, for the CLI (`send`, `user`,
// `explain`, `kpis`) and the integration tests. Thread safety: thread-safe (no shared state).
#ifndef TIERSTREAM_TOOLS_CLIENT_H_
#define TIERSTREAM_TOOLS_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tierstream::tools {

struct HttpResult {
  int status = 0;
  std::string body;
};

// One HTTP/1.1 request to "host:port"; `body` is sent when non-empty or method is POST.
// `token`, when set, is sent as "Authorization: Bearer TOKEN".
Result<HttpResult> HttpRequest(
    const std::string& address, const std::string& method, const std::string& target,
    std::string_view body = {}, int timeout_seconds = 120, const std::string& token = {},
    const std::vector<std::pair<std::string, std::string>>& headers = {});

// An ack line of the TCP ingest port: lines 1..durable_lines of the stream
// are durable or rejected, with these counts over them.
struct TcpAck {
  uint64_t durable_lines = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
};

// Streams `data` to the TCP ingest port, shuts down the sending side and
// returns the server's summary line (the last line it sent; it starts with
// {"error": when a batch was refused). Acks that arrive meanwhile are passed
// to `on_ack`, on the calling thread. `timeout_seconds` bounds a silence
// (nothing sent nor received), not the whole transfer.
// `token`, when set, is sent first as the line "AUTH TOKEN".
Result<std::string> TcpSend(const std::string& address, std::string_view data,
                            int timeout_seconds = 600, const std::string& token = {},
                            const std::function<void(const TcpAck&)>& on_ack = {});

// Reads a token file (the token is its first line, surrounding blanks trimmed).
Result<std::string> ReadTokenFile(const std::string& path);

// Percent-encodes a path segment.
std::string UrlEncode(std::string_view s);

}  // namespace tierstream::tools

#endif  // TIERSTREAM_TOOLS_CLIENT_H_
