// Blocking HTTP and TCP clients of a running server (Beast), for the CLI and tests.
#include "tools/client.h"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <fstream>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange

#include "common/host_port.h"

namespace tierstream::tools {

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
                               int timeout_seconds, const std::string& token,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
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
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!body.empty() || method == "POST") {
    req.set(http::field::content_type, "application/x-ndjson");
    req.body() = std::string(body);
    req.prepare_payload();
  }
  // Asynchronous, so that the deadline Connect set bounds the exchange too
  // (a peer that accepts and never answers — a stopped process — fails).
  http::async_write(stream, req, [&ec](beast::error_code e, size_t) { ec = e; });
  ioc.run();
  if (ec) return Status::IoError("send to " + address + ": " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ull << 30);
  ioc.restart();
  http::async_read(stream, buffer, parser, [&ec](beast::error_code e, size_t) { ec = e; });
  ioc.run();
  if (ec) return Status::IoError("read from " + address + ": " + ec.message());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  HttpResult result;
  result.status = static_cast<int>(parser.get().result_int());
  result.body = std::move(parser.get().body());
  return result;
}

namespace {

// The unsigned integer after "key": in one of the server's flat JSON lines.
uint64_t UintField(std::string_view line, std::string_view key) {
  const std::string quoted = "\"" + std::string(key) + "\":";
  size_t at = line.find(quoted);
  if (at == std::string_view::npos) return 0;
  uint64_t v = 0;
  std::from_chars(line.data() + at + quoted.size(), line.data() + line.size(), v);
  return v;
}

}  // namespace

Result<std::string> TcpSend(const std::string& address, std::string_view data, int timeout_seconds,
                            const std::string& token,
                            const std::function<void(const TcpAck&)>& on_ack) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  std::string host;
  Status connected = Connect(address, timeout_seconds, &stream, &host);
  if (!connected.ok()) return connected;
  tcp::socket& socket = stream.socket();
  const std::string auth = token.empty() ? "" : "AUTH " + token + "\n";
  std::string_view unsent = data;
  // Send and read at once: acks come while the data goes out, and a server
  // that ends the connection early (a refused batch) says why before it does.
  using Clock = std::chrono::steady_clock;
  auto last_activity = Clock::now();
  bool timed_out = false;
  beast::error_code write_error, read_error;
  std::string pending, last_line;
  std::array<char, 16384> in;

  net::steady_timer watchdog(ioc);
  std::function<void()> watch = [&] {
    watchdog.expires_at(last_activity + std::chrono::seconds(timeout_seconds));
    watchdog.async_wait([&](beast::error_code ec) {
      if (ec) return;
      if (Clock::now() - last_activity >= std::chrono::seconds(timeout_seconds)) {
        timed_out = true;
        beast::error_code ignored;
        socket.close(ignored);
        return;
      }
      watch();
    });
  };
  std::function<void()> write_more = [&] {
    if (unsent.empty()) {
      beast::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    const size_t n = std::min<size_t>(unsent.size(), 1 << 20);
    net::async_write(socket, net::buffer(unsent.data(), n), [&, n](beast::error_code ec, size_t) {
      if (ec) {
        write_error = ec;  // keep reading: the server may have said why
        return;
      }
      last_activity = Clock::now();
      unsent.remove_prefix(n);
      write_more();
    });
  };
  std::function<void()> read_more = [&] {
    socket.async_read_some(net::buffer(in), [&](beast::error_code ec, size_t n) {
      pending.append(in.data(), n);
      if (n > 0) last_activity = Clock::now();
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("{\"durable_lines\":", 0) == 0) {
          if (on_ack) {
            on_ack(TcpAck{UintField(line, "durable_lines"), UintField(line, "accepted"),
                          UintField(line, "duplicates"), UintField(line, "rejected")});
          }
        } else if (!line.empty()) {
          last_line = std::move(line);
        }
      }
      if (ec) {
        if (ec != net::error::eof) read_error = ec;
        if (!pending.empty()) last_line = std::move(pending);
        watchdog.cancel();
        return;
      }
      read_more();
    });
  };
  if (!auth.empty()) {
    beast::error_code ec;
    net::write(socket, net::buffer(auth), ec);
    if (ec) return Status::IoError("send to " + address + ": " + ec.message());
  }
  watch();
  write_more();
  read_more();
  ioc.run();
  if (!last_line.empty()) return last_line;
  if (timed_out)
    return Status::IoError("no answer from " + address + " for " + std::to_string(timeout_seconds) +
                           " s");
  if (read_error) return Status::IoError("read from " + address + ": " + read_error.message());
  if (write_error) return Status::IoError("send to " + address + ": " + write_error.message());
  return Status::IoError(address + " closed the connection without a summary");
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token)) return Status::IoError("cannot read token file " + path);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  size_t start = 0;
  while (start < token.size() && std::isspace(static_cast<unsigned char>(token[start]))) ++start;
  token.erase(0, start);
  if (token.size() < 16)
    return Status::InvalidArgument("token file " + path + ": token must be at least 16 characters");
  return token;
}

}  // namespace tierstream::tools
