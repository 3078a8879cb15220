// One webhook POST at a time over a kept HTTP/1.1 connection, within a
// deadline (webhook_post.h).
#include "server/webhook_post.h"

#include <boost/asio/connect.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>

namespace tierstream::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
// A receiver's answer is read for its status; what it says in its body is
// not used, so a long one is cut off (and its connection closed).
constexpr uint64_t kMaxAnswerBody = 64 * 1024;

bool ClosedByPeer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}
}  // namespace

struct WebhookPost::Attempt {
  std::shared_ptr<const Request> request;
  std::function<void(Outcome)> done;
  bool reused = false;   // over a connection kept from an earlier POST
  bool retried = false;  // sent again over a new connection
  bool finished = false;
  std::optional<http::response_parser<http::string_body>> parser;
};

WebhookPost::WebhookPost(net::io_context& ioc, std::string host, uint16_t port,
                         std::chrono::milliseconds timeout)
    : ioc_(ioc),
      host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      resolver_(ioc),
      socket_(ioc),
      deadline_(ioc) {}

WebhookPost::~WebhookPost() { Close(); }

void WebhookPost::Close() {
  resolver_.cancel();
  beast::error_code ec;
  socket_.close(ec);
  connected_ = false;
  buffer_.clear();
}

void WebhookPost::Send(std::shared_ptr<const Request> request, std::function<void(Outcome)> done) {
  auto a = std::make_shared<Attempt>();
  a->request = std::move(request);
  a->done = std::move(done);
  current_ = a;
  deadline_.expires_after(timeout_);
  deadline_.async_wait([this, a](beast::error_code ec) {
    if (ec || a->finished) return;
    Finish(a, {0, "timed out after " + std::to_string(timeout_.count()) + " ms"});
  });
  if (connected_) {
    a->reused = true;
    // Through the io_context like every other path: done never runs inside Send.
    net::post(ioc_, [this, a] {
      if (!a->finished) Write(a);
    });
  } else {
    Connect(a);
  }
}

void WebhookPost::Connect(const std::shared_ptr<Attempt>& a) {
  resolver_.async_resolve(
      host_, std::to_string(port_),
      [this, a](beast::error_code ec, net::ip::tcp::resolver::results_type results) {
        if (a->finished) return;
        if (ec) return Finish(a, {0, "resolve " + host_ + ": " + ec.message()});
        net::async_connect(socket_, results,
                           [this, a](beast::error_code cec, const net::ip::tcp::endpoint&) {
                             if (a->finished) return;
                             if (cec) return Finish(a, {0, "connect: " + cec.message()});
                             connected_ = true;
                             buffer_.clear();
                             Write(a);
                           });
      });
}

void WebhookPost::Write(const std::shared_ptr<Attempt>& a) {
  http::async_write(socket_, *a->request, [this, a](beast::error_code ec, size_t) {
    if (a->finished) return;
    if (ec) {
      if (ClosedByPeer(ec) && RetryFresh(a)) return;
      return Finish(a, {0, "send: " + ec.message()});
    }
    Read(a);
  });
}

void WebhookPost::Read(const std::shared_ptr<Attempt>& a) {
  a->parser.emplace();
  a->parser->body_limit(kMaxAnswerBody);
  http::async_read(socket_, buffer_, *a->parser, [this, a](beast::error_code ec, size_t n) {
    if (a->finished) return;
    auto& parser = *a->parser;
    if (!ec) {
      const bool keep = parser.get().keep_alive();
      return Finish(a, {static_cast<int>(parser.get().result_int()), {}}, keep);
    }
    // The status line says what the receiver decided, whatever became of
    // the body after it.
    if (parser.is_header_done()) {
      return Finish(a, {static_cast<int>(parser.get().result_int()), {}}, false);
    }
    if (n == 0 && ClosedByPeer(ec) && RetryFresh(a)) return;
    Finish(a, {0, "answer: " + ec.message()});
  });
}

bool WebhookPost::RetryFresh(const std::shared_ptr<Attempt>& a) {
  if (!a->reused || a->retried) return false;
  a->retried = true;
  Close();
  Connect(a);
  return true;
}

void WebhookPost::Finish(const std::shared_ptr<Attempt>& a, Outcome outcome, bool keep) {
  if (a->finished) return;
  a->finished = true;
  deadline_.cancel();
  if (!keep) Close();
  if (current_ == a) current_.reset();
  auto done = std::move(a->done);
  done(std::move(outcome));
}

}  // namespace tierstream::server
