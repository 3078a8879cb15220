// CheckFraming: whether an HTTP request's header frames it reliably
// (RFC 9112). Thread safety: const-safe (a pure function).
#ifndef TIERSTREAM_SERVER_FRAMING_H_
#define TIERSTREAM_SERVER_FRAMING_H_

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <optional>
#include <string>

namespace tierstream::server {

// Why a request's header does not frame it reliably (RFC 9112), if it does
// not: the request is then answered with `status` and the connection closed,
// since where its body ends, and so where the next request starts, is
// unknown. Lax framing lets bytes of a body be read as a request of their
// own (request smuggling): "Transfer-Encoding: xchunked" was taken for "no
// body" and a GET hidden in the body was answered.
struct FramingError {
  boost::beast::http::status status;
  std::string message;
};

std::optional<FramingError> CheckFraming(const boost::beast::http::request_header<>& req);

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_FRAMING_H_
