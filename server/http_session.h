// HttpSession: one HTTP/1.1 connection. It reads requests (header piece by
// piece under the idle or authentication deadline, then the body within
// the BodyBudget), refuses what the header alone decides (framing, token,
// size, probe connections), hands the rest to HttpApi and writes its
// answers: whole, or streamed from a BodyStream. It is the HttpApi's
// Executor: asynchronous answers continue on its lane's thread.
//
// Ownership: keeps itself alive through its pending operations (and the
// pipeline callbacks of its request in flight); counts itself in the
// server's connections from construction to destruction.
// Thread safety: confined to its lane's thread, but for the Executor
// methods (thread-safe).
#ifndef TIERSTREAM_SERVER_HTTP_SESSION_H_
#define TIERSTREAM_SERVER_HTTP_SESSION_H_

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>

#include "server/http_api.h"
#include "server/lane.h"
#include "server/request_body.h"
#include "server/server_impl.h"

namespace tierstream::server {

class HttpSession : public Session,
                    public Executor,
                    public std::enable_shared_from_this<HttpSession> {
 public:
  // `probe`: a connection beyond --max-connections, counted apart, that may
  // only ask for /healthz or /readyz (one request, within kProbeDeadline).
  HttpSession(boost::asio::ip::tcp::socket socket, Server::Impl* server, Lane* lane, bool probe);
  ~HttpSession() override;

  // Counted as unauthenticated under this ticket (see Admission).
  void set_ticket(uint64_t ticket) { ticket_ = ticket; }
  int native_handle() { return stream_.socket().native_handle(); }
  boost::asio::any_io_executor executor() { return stream_.get_executor(); }

  void Start();
  // Answers 503 and closes: used when the connection limit is reached.
  void RefuseBusy();
  // A request whose header was read is answered (Connection: close); an
  // idle connection is closed.
  void Shutdown() override;
  // (A connection that authenticated meanwhile stays.)
  void Evict() override;

  // Executor.
  void Post(std::function<void()> fn) override;
  void PostAfter(std::chrono::milliseconds delay, std::function<void()> fn) override;

 private:
  using HttpRequest = boost::beast::http::request<RequestBody>;
  using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
  using Clock = std::chrono::steady_clock;

  void DoRead();
  void ReadHeader();
  void OnHeader(boost::beast::error_code ec);
  void AdmitBody(Clock::time_point give_up);
  std::string BodyLimitMessage() const;
  void RefuseBody(unsigned version);
  void StartBody();
  void ReadBody();
  bool Authorized(const boost::beast::http::request_header<>& req) const;
  void Unauthorized(unsigned version);
  void OnRead(boost::beast::error_code ec);
  void Dispatch();
  // A session-level answer: `response`, then close unless `keep_alive`.
  void Answer(Response response, bool keep_alive, unsigned version);
  void Send(HttpResponse res);
  // The streamed body of `response` (see BodyStream).
  void StartStream(Response response);
  void NextPiece();
  void WritePiece(std::string piece);
  void EndStream();
  void FinishStream(bool keep_alive);
  void Close();
  void ExpireIdle();
  void LingerClose();
  void Discard();

  boost::beast::tcp_stream stream_;
  Server::Impl* server_;
  Lane* lane_;
  boost::asio::steady_timer timer_;
  const bool probe_;
  std::atomic<int>* const counter_;  // the connection count this one is in
  bool authenticated_;               // a request carried the token (or none is needed)
  const Clock::time_point auth_deadline_;
  uint64_t ticket_ = 0;      // counted as unauthenticated under it (0: not counted)
  bool in_request_ = false;  // from a read header to the answer written
  bool refusing_ = false;    // answered 503 on accept: closed at once
  // What was read but not parsed yet: a header (at most 64 KiB) and one
  // read (at most 64 KiB). Capped, since Beast bounds neither a chunk-size
  // line (chunk extensions) nor its buffer: 4 connections sending 16 MiB of
  // extension each grew the server by 112 MB. Past the cap the read fails
  // (buffer_overflow: 400).
  boost::beast::flat_buffer buffer_{256 * 1024};
  std::optional<boost::beast::http::request_parser<RequestBody>> parser_;
  HttpRequest request_;
  std::shared_ptr<HttpResponse> response_;
  // A streamed answer: its header, serializer, source and the piece being written.
  boost::beast::http::response<boost::beast::http::empty_body> stream_response_;
  std::optional<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
      serializer_;
  std::shared_ptr<BodyStream> body_stream_;
  std::string piece_;
  std::unique_ptr<std::array<char, 4096>> discard_;  // LingerClose's sink
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_HTTP_SESSION_H_
