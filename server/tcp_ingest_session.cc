// Takes one producer's NDJSON stream, acks its durable prefix and sends
// its summary.
#include "server/tcp_ingest_session.h"

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange
#include <vector>

#include "server/auth.h"
#include "server/http_api.h"
#include "server/ingest_session.h"

namespace tierstream::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

class TcpSession : public Session, public std::enable_shared_from_this<TcpSession> {
 public:
  TcpSession(tcp::socket socket, Server::Impl* server, Lane* lane)
      : socket_(std::move(socket)),
        server_(server),
        lane_(lane),
        timer_(socket_.get_executor()),
        idle_(socket_.get_executor()),
        ack_timer_(socket_.get_executor()),
        authenticated_(server->options.token.empty()),
        // Before AUTH, room for the AUTH line only.
        buffer_(server->options.token.empty() ? kFirstReadBytes : kMaxAuthLine) {
    server_->admission.connections.fetch_add(1);
  }
  ~TcpSession() override {
    if (ticket_ != 0) server_->admission.Authenticated(ticket_);
    server_->admission.connections.fetch_sub(1);
  }

  // Counted as unauthenticated under this ticket (see Admission).
  void set_ticket(uint64_t ticket) { ticket_ = ticket; }
  // (A connection that authenticated meanwhile stays.)
  void Evict() override {
    if (!authenticated_) Close();
  }
  int native_handle() { return socket_.native_handle(); }

  void Start() {
    if (closed_) return;  // evicted before it started
    lane_->Register(shared_from_this());
    pipeline_ = server_->pipeline.load(std::memory_order_acquire);  // set before TCP binds
    if (authenticated_) {
      StartIngest();
    } else {
      // The AUTH line is due within the authentication deadline.
      idle_.expires_after(std::chrono::seconds(server_->options.auth_timeout_seconds));
      idle_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->authenticated_ || self->input_ended_) return;
        self->input_ended_ = true;
        self->SetFinal(ErrorBody("no AUTH line within " +
                                 std::to_string(self->server_->options.auth_timeout_seconds) +
                                 " s"));
      });
    }
    last_input_ = Clock::now();
    DoRead();
    if (server_->stopped.load()) Shutdown();
  }
  net::any_io_executor executor() { return socket_.get_executor(); }

  void RefuseBusy() {
    auto line = std::make_shared<std::string>(ErrorBody("too many connections") + "\n");
    net::async_write(
        socket_, net::buffer(*line),
        [self = shared_from_this(), line](beast::error_code, size_t) { self->Close(); });
  }

  void Shutdown() override {
    if (!authenticated_) return Close();  // nothing was taken: nothing to answer
    if (!input_ended_ && !closed_) EndInput(/*half_close=*/false);
  }

 private:
  using Clock = std::chrono::steady_clock;
  // The read buffer starts small and doubles while reads fill it, so an
  // idle producer costs little and a fast one reads in large chunks.
  static constexpr size_t kFirstReadBytes = 16 * 1024;
  static constexpr size_t kMaxReadBytes = 256 * 1024;
  static constexpr size_t kMaxAuthLine = 512;

  // After authentication (at once without a token): input is taken from now on.
  void StartIngest() {
    ingest_ = std::make_shared<IngestSession>(pipeline_, "tcp", &server_->api.ingest_metrics().tcp);
    // The Kafka mode: into the input topic.
    if (server_->options.cluster.produce_lines) {
      ingest_->set_producer(server_->options.cluster.produce_lines);
    }
    // A weak reference: the ingest session is ours; it must not keep us.
    ingest_->set_on_progress([weak = weak_from_this(), executor = socket_.get_executor()] {
      auto self = weak.lock();
      if (!self || self->progress_posted_.exchange(true)) return;  // one wake-up in flight at most
      net::post(executor, [self] {
        self->progress_posted_.store(false);
        self->Pump();
      });
    });
    last_input_ = Clock::now();
    ArmIdle();
  }
  // Acks coalesce: a producer gets at most one per interval, and only news.
  static constexpr auto kAckInterval = std::chrono::milliseconds(5);

  std::chrono::seconds IdleTimeout() const {
    return std::chrono::seconds(server_->options.idle_timeout_seconds);
  }

  // Fires at the idle deadline; input since then moved it (no re-arm per read).
  void ArmIdle() {
    idle_.expires_at(last_input_ + IdleTimeout());
    idle_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->input_ended_) return;
      if (Clock::now() - self->last_input_ >= self->IdleTimeout()) return self->EndInput(false);
      self->ArmIdle();
    });
  }

  void DoRead() {
    if (!input_ended_ && !pipeline_->HasCapacity()) {  // backpressure: stop reading for a moment
      timer_.expires_after(std::chrono::milliseconds(1));
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec) return;
        self->last_input_ = Clock::now();  // the server is slow, not the producer
        self->DoRead();
      });
      return;
    }
    reading_ = true;
    socket_.async_read_some(
        net::buffer(buffer_),
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(beast::error_code ec, size_t n) {
    reading_ = false;
    if (closed_) return;
    if (input_ended_) {
      // Input is no longer taken: drop it until the peer closes.
      if (!ec) return DoRead();
      if (ec != net::error::eof) peer_gone_ = true;
      if (final_sent_ || peer_gone_) Close();
      return;
    }
    std::string_view data(buffer_.data(), n);
    if (n > 0 && !authenticated_) {
      // The first line must be "AUTH <token>".
      size_t before = auth_line_.size();
      auth_line_.append(data.substr(0, kMaxAuthLine - std::min(before, kMaxAuthLine)));
      size_t nl = auth_line_.find('\n');
      if (nl == std::string::npos && auth_line_.size() < kMaxAuthLine && !ec) return DoRead();
      std::string line = auth_line_.substr(0, nl == std::string::npos ? auth_line_.size() : nl);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (nl == std::string::npos || !ConstantTimeEquals(line, "AUTH " + server_->options.token)) {
        input_ended_ = true;
        SetFinal(ErrorBody("missing or wrong AUTH line"));
        if (!ec) DoRead();
        return;
      }
      authenticated_ = true;
      if (ticket_ != 0) server_->admission.Authenticated(std::exchange(ticket_, 0));
      idle_.cancel();  // the authentication deadline
      StartIngest();
      data.remove_prefix(std::min(data.size(), nl + 1 - before));
      auth_line_.clear();
      auth_line_.shrink_to_fit();
    }
    if (!data.empty()) {
      ingest_->Feed(data);
      last_input_ = Clock::now();
    }
    if (!ec && authenticated_) {
      if (buffer_.size() < kFirstReadBytes) {
        std::vector<char>(kFirstReadBytes).swap(buffer_);  // was the AUTH line's
      } else if (n == buffer_.size() && buffer_.size() < kMaxReadBytes) {
        std::vector<char>(2 * buffer_.size()).swap(buffer_);
      }
    }
    if (ec == net::error::eof) return EndInput(/*half_close=*/true);
    if (ec) {
      // The producer vanished: what was framed is still processed, nobody to answer.
      peer_gone_ = true;
      return EndInput(false);
    }
    DoRead();
  }

  // Stops taking input (reading goes on, to see the peer close), and sends
  // the final line once every submitted batch is done.
  void EndInput(bool half_close) {
    input_ended_ = true;
    if (!ingest_) return Close();  // never authenticated: nothing was taken
    ingest_->Finish(
        [self = shared_from_this()](IngestSummary summary) {
          net::post(self->socket_.get_executor(),
                    [self, s = std::move(summary)] { self->SetFinal(s.ToStreamJson()); });
        },
        /*take_partial_line=*/half_close);
    // A read in flight (or the backpressure pause, which then reads) goes on
    // dropping input until the peer closes.
  }

  void SetFinal(std::string line) {
    final_ = std::move(line) + "\n";
    final_ready_ = true;
    Pump();
  }

  // The one writer: the final line when it is ready, else an ack when there
  // is news and the last one is at least kAckInterval old.
  void Pump() {
    if (writing_ || closed_ || final_sent_) return;
    if (final_ready_) {
      if (peer_gone_) return Close();
      // A peer that never reads must not hold the connection forever.
      idle_.expires_after(authenticated_
                              ? IdleTimeout()
                              : std::chrono::seconds(server_->options.auth_timeout_seconds));
      idle_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (!ec) self->Close();
      });
      Write(final_, [](TcpSession* self) {
        self->final_sent_ = true;
        self->idle_.cancel();
        self->LingerClose();
      });
      return;
    }
    if (peer_gone_ || !ingest_) return;
    IngestProgress progress = ingest_->Progress();
    if (!progress.refused.ok()) {
      if (!input_ended_) EndInput(false);  // the final line carries the error
      return;
    }
    if (progress.durable_lines <= acked_lines_) return;
    const auto now = Clock::now();
    if (now < last_ack_ + kAckInterval) {
      if (!ack_timer_armed_) {
        ack_timer_armed_ = true;
        ack_timer_.expires_at(last_ack_ + kAckInterval);
        ack_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
          self->ack_timer_armed_ = false;
          if (!ec) self->Pump();
        });
      }
      return;
    }
    acked_lines_ = progress.durable_lines;
    last_ack_ = now;
    ack_ = progress.ToAckJson() + "\n";
    Write(ack_, [](TcpSession* self) { self->Pump(); });
  }

  template <typename Then>
  void Write(const std::string& line, Then then) {
    writing_ = true;
    net::async_write(socket_, net::buffer(line),
                     [self = shared_from_this(), then](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       if (ec) {
                         self->peer_gone_ = true;
                         return self->Close();
                       }
                       then(self.get());
                     });
  }

  // After the final line: FIN, then drop input until the peer closes (at
  // most 2 s), so that unread input does not turn the close into a reset
  // that could destroy the final line before the peer reads it.
  void LingerClose() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    if (!reading_) return Close();
    idle_.expires_after(std::chrono::seconds(2));
    idle_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Close();
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    idle_.cancel();
    ack_timer_.cancel();
  }

  tcp::socket socket_;
  Server::Impl* server_;
  Lane* lane_;
  pipeline::Pipeline* pipeline_ = nullptr;
  net::steady_timer timer_;      // backpressure pauses
  net::steady_timer idle_;       // idle deadline, then the final line's and the linger's
  net::steady_timer ack_timer_;  // the next ack when one was sent less than kAckInterval ago
  bool authenticated_;           // sent its AUTH line (or none is needed)
  std::vector<char> buffer_;
  std::shared_ptr<IngestSession> ingest_;
  std::atomic<bool> progress_posted_{false};
  Clock::time_point last_input_;
  Clock::time_point last_ack_;
  uint64_t acked_lines_ = 0;
  std::string ack_;    // the ack being written
  std::string final_;  // the last line
  std::string auth_line_;
  uint64_t ticket_ = 0;       // counted as unauthenticated under it (0: not counted)
  bool reading_ = false;      // a read is in flight
  bool input_ended_ = false;  // no more input is taken
  bool peer_gone_ = false;    // the peer reset or a write failed: nobody to answer
  bool writing_ = false;
  bool ack_timer_armed_ = false;
  bool final_ready_ = false;
  bool final_sent_ = false;
  bool closed_ = false;
};

}  // namespace

void StartTcpIngestSession(tcp::socket socket, Server::Impl* server, Lane* lane) {
  const Admission::Decision admission =
      server->admission.Admit(socket.native_handle(), /*http=*/false);
  auto session = std::make_shared<TcpSession>(std::move(socket), server, lane);
  const bool busy = admission.busy;
  if (!busy && admission.counted_unauthenticated) {
    session->set_ticket(server->admission.AddUnauthenticated(
        session->native_handle(), /*http=*/false, [weak = std::weak_ptr<Session>(session), lane] {
          net::post(lane->ioc, [weak] {
            if (auto s = weak.lock()) s->Evict();
          });
        }));
  }
  net::post(session->executor(),
            [session, busy] { busy ? session->RefuseBusy() : session->Start(); });
}

}  // namespace tierstream::server
