// WebhookPost: a webhook's HTTP/1.1 connection to its receiver, and one
// POST at a time over it (Beast). Internal to server/webhooks.cc.
//
// Each POST must be answered within the timeout, counted from its start:
// name lookup, connecting (again, if the last connection was closed),
// writing and reading the answer's header included; past it the connection
// is closed and the POST fails. The connection is kept for the next POST
// while the receiver keeps it alive; when a kept connection turns out to be
// closed before any of the answer arrived (the receiver closed it while
// idle), the POST goes again once over a new connection, within the same
// timeout.
//
// Thread safety: confined to the thread running its io_context.
#ifndef TIERSTREAM_SERVER_WEBHOOK_POST_H_
#define TIERSTREAM_SERVER_WEBHOOK_POST_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange

namespace tierstream::server {

class WebhookPost {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  // What became of a POST: the answer's status, or 0 and why none came.
  struct Outcome {
    int status = 0;
    std::string error;
  };

  WebhookPost(boost::asio::io_context& ioc, std::string host, uint16_t port,
              std::chrono::milliseconds timeout);
  ~WebhookPost();
  WebhookPost(const WebhookPost&) = delete;
  WebhookPost& operator=(const WebhookPost&) = delete;

  // Sends `request` (complete: target, headers, body, prepared payload);
  // `done` runs once, on the io_context's thread, never inside Send.
  // REQUIRES: no other Send in progress.
  void Send(std::shared_ptr<const Request> request, std::function<void(Outcome)> done);
  // Closes the connection; a Send in progress fails ("closed").
  void Close();

 private:
  struct Attempt;
  void Connect(const std::shared_ptr<Attempt>& a);
  void Write(const std::shared_ptr<Attempt>& a);
  void Read(const std::shared_ptr<Attempt>& a);
  // A kept connection failed before the answer began: once more, anew.
  bool RetryFresh(const std::shared_ptr<Attempt>& a);
  // Runs the attempt's `done` once; closes the connection unless `keep`.
  void Finish(const std::shared_ptr<Attempt>& a, Outcome outcome, bool keep = false);

  boost::asio::io_context& ioc_;
  const std::string host_;
  const uint16_t port_;
  const std::chrono::milliseconds timeout_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer deadline_;
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
  std::shared_ptr<Attempt> current_;
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_WEBHOOK_POST_H_
