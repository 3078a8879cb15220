// Refuses HTTP requests whose length is ambiguous, before their bodies.
#include "server/framing.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <string_view>
#include <vector>

namespace tierstream::server {

namespace beast = boost::beast;
namespace http = beast::http;

std::optional<FramingError> CheckFraming(const http::request_header<>& req) {
  // §3.2: an HTTP/1.1 request has exactly one Host.
  const size_t hosts = req.count(http::field::host);
  if (hosts == 0 && req.version() >= 11) {
    return FramingError{http::status::bad_request, "Host header missing (required in HTTP/1.1)"};
  }
  if (hosts > 1) return FramingError{http::status::bad_request, "more than one Host header"};
  auto [first, last] = req.equal_range(http::field::transfer_encoding);
  if (first == last) return std::nullopt;
  // §6.1: HTTP/1.0 has no transfer codings; its framing is faulty.
  if (req.version() < 11) {
    return FramingError{http::status::bad_request, "Transfer-Encoding in an HTTP/1.0 request"};
  }
  // §6.3 lets a server either ignore Content-Length or refuse: refusing
  // leaves no two readings of one request.
  if (req.count(http::field::content_length) > 0) {
    return FramingError{http::status::bad_request,
                        "both Content-Length and Transfer-Encoding; send one"};
  }
  // Every coding of every Transfer-Encoding line, in order (§5.3: several
  // lines make one list; empty list elements are allowed and ignored).
  std::vector<std::string_view> codings;
  for (auto it = first; it != last; ++it) {
    std::string_view list(it->value().data(), it->value().size());
    while (!list.empty()) {
      const size_t comma = list.find(',');
      std::string_view coding = list.substr(0, comma);
      while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
        coding.remove_prefix(1);
      while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
        coding.remove_suffix(1);
      if (!coding.empty()) codings.push_back(coding);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  auto is_chunked = [](std::string_view c) {
    return beast::iequals(beast::string_view(c.data(), c.size()), "chunked");
  };
  // §6.3: unless chunked is the last coding, the body's length is unknown.
  if (codings.empty() || !is_chunked(codings.back())) {
    return FramingError{http::status::bad_request,
                        "Transfer-Encoding must end with chunked (RFC 9112 §6.3)"};
  }
  // §6.1: chunked is applied at most once.
  if (std::count_if(codings.begin(), codings.end(), is_chunked) > 1) {
    return FramingError{http::status::bad_request, "Transfer-Encoding names chunked twice"};
  }
  // §6.1: a coding the server does not implement is 501; only chunked is.
  for (std::string_view coding : codings) {
    if (!is_chunked(coding)) {
      return FramingError{http::status::not_implemented,
                          "Transfer-Encoding " + std::string(coding) +
                              " is not implemented; send the body with chunked alone"};
    }
  }
  return std::nullopt;
}

}  // namespace tierstream::server
