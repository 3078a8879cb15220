#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange

#include "app/client.h"

#include <cctype>
#include <chrono>
#include <fstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "app/server.h"

namespace tierstream::app {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

Status Connect(const std::string& address, int timeout_seconds, beast::tcp_stream* stream,
               std::string* host) {
  uint16_t port;
  if (!SplitHostPort(address, host, &port)) {
    return Status::InvalidArgument("address: expected HOST:PORT, got '" + address + "'");
  }
  beast::error_code ec;
  tcp::resolver resolver(stream->get_executor());
  auto endpoints = resolver.resolve(*host, std::to_string(port), ec);
  if (ec) return Status::IoError("resolve " + address + ": " + ec.message());
  stream->expires_after(std::chrono::seconds(timeout_seconds));
  stream->connect(endpoints, ec);
  if (ec) return Status::IoError("connect " + address + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<HttpResult> HttpRequest(const std::string& address, const std::string& method,
                               const std::string& target, std::string_view body,
                               int timeout_seconds, const std::string& token) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  std::string host;
  Status connected = Connect(address, timeout_seconds, &stream, &host);
  if (!connected.ok()) return connected;
  beast::error_code ec;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "tierstream");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty() || method == "POST") {
    req.set(http::field::content_type, "application/x-ndjson");
    req.body() = std::string(body);
    req.prepare_payload();
  }
  http::write(stream, req, ec);
  if (ec) return Status::IoError("send to " + address + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ull << 30);
  http::read(stream, buffer, parser, ec);
  if (ec) return Status::IoError("read from " + address + ": " + ec.message());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  HttpResult result;
  result.status = static_cast<int>(parser.get().result_int());
  result.body = std::move(parser.get().body());
  return result;
}

Result<std::string> TcpSend(const std::string& address, std::string_view data,
                            int timeout_seconds, const std::string& token) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  std::string host;
  Status connected = Connect(address, timeout_seconds, &stream, &host);
  if (!connected.ok()) return connected;
  beast::error_code ec;
  if (!token.empty()) {
    const std::string auth = "AUTH " + token + "\n";
    net::write(stream.socket(), net::buffer(auth), ec);
  }
  if (!ec) net::write(stream.socket(), net::buffer(data.data(), data.size()), ec);
  if (ec) return Status::IoError("send to " + address + ": " + ec.message());
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::string reply;
  char buf[4096];
  for (;;) {
    size_t n = stream.socket().read_some(net::buffer(buf), ec);
    reply.append(buf, n);
    if (ec == net::error::eof) break;
    if (ec) return Status::IoError("read from " + address + ": " + ec.message());
  }
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.pop_back();
  size_t nl = reply.rfind('\n');
  return nl == std::string::npos ? reply : reply.substr(nl + 1);
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token)) return Status::IoError("cannot read token file " + path);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  size_t start = 0;
  while (start < token.size() && std::isspace(static_cast<unsigned char>(token[start]))) ++start;
  token.erase(0, start);
  if (token.size() < 16) return Status::InvalidArgument("token file " + path + ": token must be at least 16 characters");
  return token;
}

}  // namespace tierstream::app
