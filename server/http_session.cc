// Reads the requests of one HTTP connection and writes HttpApi's answers.
#include "server/http_session.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <limits>
#include <string_view>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange

#include "server/auth.h"
#include "server/framing.h"

namespace tierstream::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// How long a probe connection (kMaxProbeConnections, server.h) has for its request.
constexpr auto kProbeDeadline = std::chrono::seconds(2);
// How often a body waiting for its share of the budget looks again.
constexpr auto kBudgetPoll = std::chrono::milliseconds(10);

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

}  // namespace

HttpSession::HttpSession(tcp::socket socket, Server::Impl* server, Lane* lane, bool probe)
    : stream_(std::move(socket)),
      server_(server),
      lane_(lane),
      timer_(stream_.get_executor()),
      probe_(probe),
      counter_(probe ? &server->admission.probe_connections : &server->admission.connections),
      authenticated_(server->options.token.empty()),
      auth_deadline_(Clock::now() + std::chrono::seconds(server->options.auth_timeout_seconds)) {
  counter_->fetch_add(1);
}

HttpSession::~HttpSession() {
  if (ticket_ != 0) server_->admission.Authenticated(ticket_);
  counter_->fetch_sub(1);
}

void HttpSession::Evict() {
  if (!authenticated_) Close();
}

void HttpSession::Start() {
  lane_->Register(shared_from_this());
  DoRead();
  if (server_->stopped.load()) Shutdown();
}

void HttpSession::Shutdown() {
  if (!in_request_) Close();
}

// It is not lingered on (see Send): refused connections are not counted,
// and a flood of them must not hold descriptors.
void HttpSession::RefuseBusy() {
  refusing_ = true;
  HttpResponse res{http::status::service_unavailable, 11};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = ErrorBody("too many connections");
  res.prepare_payload();
  Send(std::move(res));
}

void HttpSession::Post(std::function<void()> fn) {
  net::post(stream_.get_executor(), [self = shared_from_this(), fn = std::move(fn)] { fn(); });
}

void HttpSession::PostAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  // A timer of its own: several may be pending (a long poll's deadline
  // outlives its answer when a change came first).
  auto timer = std::make_shared<net::steady_timer>(stream_.get_executor(), delay);
  timer->async_wait([self = shared_from_this(), timer, fn = std::move(fn)](beast::error_code ec) {
    if (ec || !self->stream_.socket().is_open()) return;
    fn();
  });
}

void HttpSession::DoRead() {
  parser_.emplace();
  // No limit while the header is read: OnHeader checks the token before it
  // says anything about the size, then sets the limit (chunked bodies).
  // (Not boost::none: Beast 1.74 compares a length with it as with zero.)
  parser_->body_limit(std::numeric_limits<uint64_t>::max());
  parser_->header_limit(64 * 1024);
  if (probe_) stream_.expires_after(kProbeDeadline);  // one deadline for its one request
  ReadHeader();
}

// The header piece by piece, like the body: idle means no byte for that
// long (a second request's header trickled steadily was cut at the
// timeout). By hand, since Beast's reads take a header in one operation
// under one deadline: the parser takes nothing of a header until all of it
// is there. It is not eager: it stops after the header, and what follows
// stays in buffer_ for the body.
void HttpSession::ReadHeader() {
  if (buffer_.size() > 0) {
    beast::error_code ec;
    buffer_.consume(parser_->put(buffer_.data(), ec));
    if (ec == http::error::need_more) ec = {};
    if (ec || parser_->is_header_done()) return OnHeader(ec);
  }
  const size_t room = std::min<size_t>(64 * 1024, buffer_.max_size() - buffer_.size());
  if (room == 0) return OnHeader(http::error::header_limit);
  if (!probe_) ExpireIdle();
  stream_.async_read_some(buffer_.prepare(room), [self = shared_from_this()](beast::error_code ec,
                                                                             size_t n) {
    if (ec == net::error::eof) {
      // As Beast's reads say it: end_of_stream between
      // requests, partial_message within a header.
      ec = self->parser_->got_some() ? http::error::partial_message : http::error::end_of_stream;
    }
    if (ec) return self->OnHeader(ec);
    self->buffer_.commit(n);
    self->ReadHeader();
  });
}

// Decides what it can on the header alone: a missing token and a body over
// the limit are answered before the client sends the body (and the
// connection is closed, as that body may follow); a client that waits for
// "100 Continue" (curl does, a second, for bodies over 1 MiB) gets it.
void HttpSession::OnHeader(beast::error_code ec) {
  if (ec) return OnRead(ec);
  in_request_ = true;
  const auto& req = parser_->get();
  if (auto error = CheckFraming(req)) {
    return Answer(api::Json(static_cast<int>(error->status), ErrorBody(error->message)), false,
                  req.version());
  }
  const bool health = HttpApi::IsHealth(View(req.target()));
  if (probe_ && !health) {
    return Answer(api::Json(503, ErrorBody("too many connections")), false, req.version());
  }
  if (!Authorized(req)) return Unauthorized(req.version());
  if (!authenticated_ && !health) {
    // The first request with the token: from now on the connection is
    // held to the idle timeout, not to the authentication deadline.
    authenticated_ = true;
    if (ticket_ != 0) server_->admission.Authenticated(std::exchange(ticket_, 0));
  }
  // A connection without the token may ask for health only, which has no
  // body: it is not given memory for one.
  const uint64_t limit = authenticated_ ? server_->options.max_body_bytes : 0;
  if (auto length = parser_->content_length(); length && *length > limit) {
    return Answer(api::Json(413, ErrorBody(BodyLimitMessage())), false, req.version());
  }
  parser_->body_limit(limit);
  if (parser_->is_done()) return OnRead({});
  parser_->get().body().charge = BodyCharge(&server_->body_budget);
  AdmitBody(Clock::now() + std::chrono::seconds(server_->options.idle_timeout_seconds));
}

// A body of declared length takes its whole share of the budget before a
// byte of it is read, so that once admitted it is read to the end: bodies
// that each waited for more budget half-way could wait for one another
// for ever. While other bodies hold the budget the socket is not read (the
// client waits, or waits for 100 Continue), for up to the idle timeout,
// then 503. A chunked body, of unknown length, takes its share as it
// grows, and is refused (503) at once when the budget runs out.
void HttpSession::AdmitBody(Clock::time_point give_up) {
  const auto length = parser_->content_length();
  if (!length || parser_->get().body().charge.GrowTo(*length + ingest::kPadding)) {
    return StartBody();
  }
  if (server_->stopped.load() || Clock::now() >= give_up) {
    return RefuseBody(parser_->get().version());
  }
  timer_.expires_after(kBudgetPoll);
  timer_.async_wait([self = shared_from_this(), give_up](beast::error_code ec) {
    if (ec) return self->Close();
    self->AdmitBody(give_up);
  });
}

std::string HttpSession::BodyLimitMessage() const {
  if (!authenticated_) return "a request without the token takes no body";
  return "body exceeds " + std::to_string(server_->options.max_body_bytes) + " bytes";
}

void HttpSession::RefuseBody(unsigned version) {
  Answer(
      api::Json(503, ErrorBody("busy: the request bodies in flight fill --max-inflight-body-mb (" +
                               std::to_string(server_->options.max_inflight_body_bytes >> 20) +
                               " MiB); retry later")),
      false, version);
}

void HttpSession::StartBody() {
  const auto& req = parser_->get();
  if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code write_ec, size_t) {
                       if (write_ec) return self->Close();
                       self->ReadBody();
                     });
    return;
  }
  ReadBody();
}

// Reads the body piece by piece, each read with its own idle deadline.
void HttpSession::ReadBody() {
  ExpireIdle();
  http::async_read_some(stream_, buffer_, *parser_,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec || self->parser_->is_done()) return self->OnRead(ec);
                          self->ReadBody();
                        });
}

// Every request but the health endpoints needs the token, when there is
// one (see BearerMatches).
bool HttpSession::Authorized(const http::request_header<>& req) const {
  const std::string& token = server_->options.token;
  if (token.empty() || HttpApi::IsHealth(View(req.target()))) return true;
  return BearerMatches(View(req[http::field::authorization]), token);
}

void HttpSession::Unauthorized(unsigned version) {
  HttpResponse res{http::status::unauthorized, version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::www_authenticate, "Bearer");
  res.keep_alive(false);
  res.body() = ErrorBody("missing or wrong bearer token");
  res.prepare_payload();
  Send(std::move(res));
}

void HttpSession::OnRead(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
      ec == net::error::connection_reset || ec == net::error::operation_aborted) {
    Close();
    return;
  }
  if (ec == http::error::body_limit) {
    return Answer(api::Json(413, ErrorBody(BodyLimitMessage())), false, 11);
  }
  if (ec == net::error::no_buffer_space) return RefuseBody(11);  // see RequestBody
  if (ec) {
    return Answer(api::Json(400, ErrorBody(std::string("bad request: ") + ec.message())), false,
                  11);
  }
  request_ = parser_->release();
  Dispatch();
}

void HttpSession::Dispatch() {
  Request request;
  request.method = View(request_.method_string());
  request.target = View(request_.target());
  request.body = &request_.body().bytes;
  request.last_event_id = View(request_["Last-Event-ID"]);
  request.forwarded = request_.find(kForwardedHeader) != request_.end();
  // The API is done with the body: it, and its share of the budget, go.
  request.release_body = [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->request_.body() = {};
  };
  // (The token was checked on the header, in OnHeader.)
  server_->api.Handle(request, shared_from_this(), [self = shared_from_this()](Response r) {
    if (r.stream) return self->StartStream(std::move(r));
    self->Answer(std::move(r), self->request_.keep_alive(), self->request_.version());
  });
}

void HttpSession::Answer(Response response, bool keep_alive, unsigned version) {
  HttpResponse res{static_cast<http::status>(response.status), version};
  res.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  res.body() = std::move(response.body);
  res.prepare_payload();
  Send(std::move(res));
}

void HttpSession::Send(HttpResponse res) {
  // Shutting down, or a probe connection: this is the last answer.
  if (server_->stopped.load() || probe_) res.keep_alive(false);
  // The request is answered: its body, and its share of the budget, go.
  request_.body() = {};
  parser_.reset();
  response_ = std::make_shared<HttpResponse>(std::move(res));
  ExpireIdle();
  http::async_write(stream_, *response_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->in_request_ = false;
    if (ec) return self->Close();
    if (self->response_->need_eof()) {
      return self->refusing_ ? self->Close() : self->LingerClose();
    }
    self->response_.reset();
    self->DoRead();
  });
}

// HTTP/1.1: one chunk per piece. HTTP/1.0 has no chunks: its body ends
// when the connection closes.
void HttpSession::StartStream(Response response) {
  const bool chunked = request_.version() >= 11;
  stream_response_ = {static_cast<http::status>(response.status), request_.version()};
  stream_response_.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) stream_response_.set(name, value);
  stream_response_.keep_alive(request_.keep_alive() && chunked);
  stream_response_.chunked(chunked);
  serializer_.emplace(stream_response_);
  body_stream_ = std::move(response.stream);
  stream_.expires_after(std::chrono::seconds(server_->options.idle_timeout_seconds));
  http::async_write_header(stream_, *serializer_,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             if (ec) return self->FinishStream(false);
                             self->NextPiece();
                           });
}

void HttpSession::NextPiece() {
  body_stream_->Next(
      [self = shared_from_this()](std::string piece) { self->WritePiece(std::move(piece)); });
}

void HttpSession::WritePiece(std::string piece) {
  // An empty chunk would end the body early: an empty piece is the end.
  if (piece.empty()) return EndStream();
  piece_ = std::move(piece);
  auto next = [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->FinishStream(false);
    self->NextPiece();
  };
  stream_.expires_after(std::chrono::seconds(server_->options.idle_timeout_seconds));
  if (stream_response_.chunked()) {
    net::async_write(stream_, http::make_chunk(net::buffer(piece_)), std::move(next));
  } else {
    net::async_write(stream_, net::buffer(piece_), std::move(next));
  }
}

void HttpSession::EndStream() {
  if (!stream_response_.chunked()) return FinishStream(false);  // closing ends the body
  // A body that ended in an error is left incomplete: no last chunk.
  if (body_stream_->failed()) return FinishStream(false);
  stream_.expires_after(std::chrono::seconds(server_->options.idle_timeout_seconds));
  net::async_write(stream_, http::make_chunk_last(),
                   [self = shared_from_this()](beast::error_code ec, size_t) {
                     self->FinishStream(!ec && self->stream_response_.keep_alive());
                   });
}

void HttpSession::FinishStream(bool keep_alive) {
  body_stream_.reset();  // it holds this session (its Executor)
  serializer_.reset();
  piece_.clear();
  if (!keep_alive) return Close();
  in_request_ = false;
  DoRead();
}

void HttpSession::Close() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
}

// The deadline of the next read or write: the idle timeout (no byte for
// that long: set again at every read's progress, never once per request,
// or a body streamed steadily for longer would be cut mid-way), but for a
// connection that has not authenticated, whose whole life is bounded by
// its authentication deadline (a slow header, a probe that lingers).
void HttpSession::ExpireIdle() {
  if (authenticated_) {
    stream_.expires_after(std::chrono::seconds(server_->options.idle_timeout_seconds));
  } else {
    stream_.expires_at(auth_deadline_);
  }
}

// After a last answer: closing a socket with unread input sends a reset,
// which can destroy the answer before the client reads it (an early 413
// while the client still sends its body). So send FIN, then read and drop
// what comes until the client closes too, for at most 2 s.
void HttpSession::LingerClose() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(std::chrono::seconds(2));
  Discard();
}

void HttpSession::Discard() {
  if (!discard_) discard_ = std::make_unique<std::array<char, 4096>>();
  stream_.async_read_some(net::buffer(*discard_),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) return self->Close();
                            self->Discard();
                          });
}

}  // namespace tierstream::server
