// Boost.Asio/Beast live only in this file (and client.cc): they are heavy to
// compile and their types must not leak into other modules.
#include "app/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange
#include <vector>

#include "app/ingest_session.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "ingest/decoder.h"
#include "server/wire_json.h"
#include "state/user_state.h"

namespace tierstream::app {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size()) return false;
  std::string h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned p = 0;
  auto r = std::from_chars(address.data() + colon + 1, address.data() + address.size(), p);
  if (r.ec != std::errc() || r.ptr != address.data() + address.size() || p > 65535) return false;
  *host = h.empty() ? "0.0.0.0" : h;
  *port = static_cast<uint16_t>(p);
  return true;
}

namespace {

std::string ErrorBody(std::string_view message) { return server::ErrorJson(message); }

// Decodes %XX escapes; false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '%') {
      out->push_back(c);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int v = 0;
    for (int k = 1; k <= 2; ++k) {
      char h = in[i + static_cast<size_t>(k)];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= h - '0';
      else if (h >= 'a' && h <= 'f')
        v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        v |= h - 'A' + 10;
      else
        return false;
    }
    out->push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

// Returns the decoded value of `key` in a query string, if present; sets
// *malformed (and returns nullopt) when its percent-encoding is malformed.
std::optional<std::string> QueryParam(std::string_view query, std::string_view key,
                                      bool* malformed) {
  *malformed = false;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      std::string value;
      std::string_view raw = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
      std::string plus_decoded(raw);
      for (char& c : plus_decoded) c = c == '+' ? ' ' : c;
      if (!PercentDecode(plus_decoded, &value)) {
        *malformed = true;
        return std::nullopt;
      }
      return value;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<unsigned char>(diff | (a[i] ^ b[i % (b.empty() ? 1 : b.size())]));
  }
  return diff == 0 && !b.empty();
}

// ASCII case-insensitive: whether `text` starts with `prefix` (lower case).
bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// An Authorization value "Bearer TOKEN" (the scheme is case-insensitive,
// RFC 9110 §11.1), compared in constant time.
bool BearerMatches(std::string_view value, const std::string& token) {
  constexpr std::string_view kScheme = "bearer ";
  if (!StartsWithNoCase(value, kScheme)) return false;
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return ConstantTimeEquals(value, token);
}

// Whether the first bytes of a connection not yet authenticated, if they
// have arrived, carry the token: the AUTH line (TCP), or an Authorization
// header in a complete HTTP header. Peeked on the descriptor, not read: the
// session reads and checks them as usual (and a descriptor closed and reused
// meanwhile only misleads this guess).
bool PresentsToken(int fd, bool http, const std::string& token) {
  std::array<char, 4096> buf;
  const ssize_t got = ::recv(fd, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
  if (got <= 0) return false;
  std::string_view data(buf.data(), static_cast<size_t>(got));
  if (!http) {
    std::string_view line = data.substr(0, data.find('\n'));
    if (line.size() == data.size()) return false;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return ConstantTimeEquals(line, "AUTH " + token);
  }
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return false;
  std::string_view header = data.substr(0, end + 2);
  header.remove_prefix(std::min(header.size(), header.find("\r\n") + 2));  // the request line
  constexpr std::string_view kName = "authorization:";
  while (!header.empty()) {
    const size_t eol = header.find("\r\n");
    std::string_view field = header.substr(0, eol);
    header.remove_prefix(std::min(header.size(), eol + 2));
    if (!StartsWithNoCase(field, kName)) continue;
    std::string_view value = field.substr(kName.size());
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    return BearerMatches(value, token);
  }
  return false;
}

}  // namespace

// One io_context run by exactly one thread. Every handler of a connection
// runs on its lane's thread, so the batches a connection submits leave one
// producer thread in stream order, and the pipeline's queues keep FIFO order
// only per producer thread (a strand on a shared io_context hops threads,
// which let a later batch overtake an earlier one).
// A connection, as the shutdown sequence sees it.
class Session {
 public:
  virtual ~Session() = default;
  // On its lane's thread: take no new request or input, answer what is in
  // flight, then close.
  virtual void Shutdown() = 0;
  // On its lane's thread: close now. The connection never authenticated and
  // its slot is wanted (see Server::Impl::Admit).
  virtual void Evict() = 0;
};

struct Lane {
  Lane() : ioc(1), work(net::make_work_guard(ioc)) {}
  // On this lane's thread.
  void Register(std::weak_ptr<Session> session) {
    if (sessions.size() >= prune_at) {
      std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
      prune_at = std::max<size_t>(64, 2 * sessions.size());
    }
    sessions.push_back(std::move(session));
  }
  void ShutdownSessions() {
    for (auto& w : sessions) {
      if (auto s = w.lock()) s->Shutdown();
    }
  }

  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  std::vector<std::weak_ptr<Session>> sessions;  // this lane's connections
  size_t prune_at = 64;
};

std::vector<std::unique_ptr<Lane>> MakeLanes(int n) {
  std::vector<std::unique_ptr<Lane>> lanes;
  for (int i = 0; i < std::max(n, 1); ++i) lanes.push_back(std::make_unique<Lane>());
  return lanes;
}

// The request body bytes held at once across all connections, against
// --max-inflight-body-mb: a lock-free counter that bodies take shares of and
// give back. Thread-safe.
class BodyBudget {
 public:
  explicit BodyBudget(uint64_t limit) : limit_(limit) {}
  BodyBudget(const BodyBudget&) = delete;
  BodyBudget& operator=(const BodyBudget&) = delete;

  // All of `bytes` or nothing: false when they do not fit under the limit.
  bool Take(uint64_t bytes) {
    uint64_t held = held_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ || held > limit_ - bytes) return false;
    } while (!held_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
    return true;
  }
  void Give(uint64_t bytes) { held_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> held_{0};
};

// One request body's share of the BodyBudget, given back when destroyed or
// released. Movable; confined to its connection's thread.
class BodyCharge {
 public:
  BodyCharge() = default;
  explicit BodyCharge(BodyBudget* budget) : budget_(budget) {}
  BodyCharge(BodyCharge&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  BodyCharge& operator=(BodyCharge&& other) noexcept {
    if (this != &other) {
      Release();
      budget_ = std::exchange(other.budget_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~BodyCharge() { Release(); }

  // Raises the share to `bytes` (nothing to do if it is that large already);
  // false, and nothing taken, when the budget cannot spare the difference
  // (or there is no budget: a body nobody charged must not be read).
  [[nodiscard]] bool GrowTo(uint64_t bytes) {
    if (bytes <= bytes_) return true;
    if (budget_ == nullptr || !budget_->Take(bytes - bytes_)) return false;
    bytes_ = bytes;
    return true;
  }
  void Release() {
    if (budget_ != nullptr && bytes_ > 0) budget_->Give(bytes_);
    bytes_ = 0;
  }

 private:
  BodyBudget* budget_ = nullptr;
  uint64_t bytes_ = 0;
};

// How long a probe connection (kMaxProbeConnections, server.h) has for its request.
constexpr auto kProbeDeadline = std::chrono::seconds(2);

struct Server::Impl {
  Impl(pipeline::Pipeline* p, ServerOptions o)
      : pipeline(p),
        options(std::move(o)),
        lanes(MakeLanes(options.io_threads)),
        ioc(lanes[0]->ioc),
        http_acceptor(ioc),
        tcp_acceptor(ioc),
        signals(ioc) {}

  // Null until AttachPipeline(): recovery is running.
  std::atomic<pipeline::Pipeline*> pipeline;
  ServerOptions options;
  // Every request body held, from its first byte until it is decoded
  // (--max-inflight-body-mb). Before the lanes, like the counters below.
  BodyBudget body_budget{options.max_inflight_body_bytes};
  // Declared before the lanes: destroying an io_context destroys the
  // handlers it still holds, and with them sessions that count themselves out.
  std::atomic<int> connections{0};        // producers and queries (--max-connections)
  std::atomic<int> probe_connections{0};  // the extra ones (kMaxProbeConnections)
  std::atomic<bool> stopped{false};
  // With a token: the connections that have not authenticated yet, by
  // admission number, so the oldest is first. Touched once per connection
  // (admission, authentication, end), never per byte.
  struct Unauthenticated {
    std::weak_ptr<Session> session;
    Lane* lane;
    int fd;  // to peek at (PresentsToken)
    bool http;
  };
  std::mutex unauth_mu;
  std::map<uint64_t, Unauthenticated> unauthenticated;  // GUARDED_BY(unauth_mu)
  uint64_t next_ticket = 1;                             // GUARDED_BY(unauth_mu)
  std::vector<std::unique_ptr<Lane>> lanes;
  // Lane 0: the acceptors, the signals and the shutdown sequence.
  net::io_context& ioc;
  size_t next_lane = 0;  // round-robin over lanes; touched on lane 0 only
  tcp::acceptor http_acceptor;
  tcp::acceptor tcp_acceptor;
  net::signal_set signals;

  Status Bind(tcp::acceptor* acceptor, const std::string& address, const char* what);
  // After an accept error (out of file descriptors, say), waits a moment
  // instead of spinning on it.
  template <typename Fn>
  void RetryAccept(Fn fn) {
    auto timer = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(20));
    timer->async_wait([timer, fn](beast::error_code) { fn(); });
  }
  void AcceptHttp();
  void AcceptTcp();
  // The lane of the next accepted connection.
  Lane& NextLane() { return *lanes[next_lane++ % lanes.size()]; }
  // Decides on a new connection (on lane 0). With a token, when every slot
  // is taken, or the unauthenticated connections have their whole share, the
  // oldest unauthenticated connection is evicted for it; it is refused only
  // when every slot is held by an authenticated connection. (An evicted
  // connection holds its slot until its lane has closed it, a moment later.)
  // A connection whose first bytes already carry the token is not counted as
  // unauthenticated, so a churn of connections without it (each evicting
  // the oldest) cannot evict it before its first read.
  struct Admission {
    bool busy = false;   // refuse it
    bool probe = false;  // HTTP: admitted beyond the limit, for health only (kMaxProbeConnections)
    bool counted_unauthenticated = false;  // give it a ticket (AddUnauthenticated)
  };
  Admission Admit(tcp::socket& socket, bool http);
  // Counts a new connection as unauthenticated; the returned ticket leaves
  // the count through Authenticated().
  uint64_t AddUnauthenticated(std::weak_ptr<Session> session, Lane* lane, int fd, bool http);
  // The connection authenticated or closed: it no longer counts (nothing if
  // it was evicted meanwhile).
  void Authenticated(uint64_t ticket);
  size_t MaxUnauthenticated() const {
    const int n =
        options.max_unauthenticated > 0 ? options.max_unauthenticated : options.max_connections / 4;
    return static_cast<size_t>(std::max(n, 1));
  }
  // Stops the lanes once every connection has closed, or at the deadline.
  void AwaitDrain(std::chrono::steady_clock::time_point deadline);
};

namespace {

// ---- HTTP -------------------------------------------------------------------

// Streams every member of a tier as NDJSON (GET /v1/tiers/{tier}/users
// ?format=ndjson[&fields=profile]): one {"user_id":...} or one profile (the
// JSON of GET /v1/users/{id}) per line, in user-id order. It asks the
// pipeline for one page of members at a time and writes it as one HTTP
// chunk before asking for the next, so memory holds one page whatever the
// tier's size, and a slow reader slows the listing down instead of being
// buffered for. Pages are read one after another, not as of one moment: a
// member who changes tier meanwhile may be listed in both or neither.
// HTTP/1.0 has no chunks: its body ends when the connection closes.
//
// Ownership: keeps itself alive through its pending operations; `done`
// (which holds the connection's session) runs once, on the connection's
// strand, when the response is complete or failed: true to read the next
// request, false to close. Thread safety: runs on its connection's strand;
// pipeline callbacks hop onto it.
class TierStream : public std::enable_shared_from_this<TierStream> {
 public:
  TierStream(beast::tcp_stream* stream, pipeline::Pipeline* pipeline, state::Tier tier,
             std::string after, bool profiles, const ServerOptions& options, unsigned version,
             bool keep_alive, std::function<void(bool keep_alive)> done)
      : stream_(stream),
        pipeline_(pipeline),
        tier_(tier),
        after_(std::move(after)),
        profiles_(profiles),
        page_size_(std::max<size_t>(options.tier_export_page, 1)),
        idle_timeout_(options.idle_timeout_seconds),
        chunked_(version >= 11),
        done_(std::move(done)),
        response_(http::status::ok, version) {
    response_.set(http::field::content_type, "application/x-ndjson");
    response_.set(http::field::server, "tierstream");
    response_.keep_alive(keep_alive && chunked_);
    response_.chunked(chunked_);
    serializer_.emplace(response_);
  }

  void Start() {
    stream_->expires_after(std::chrono::seconds(idle_timeout_));
    http::async_write_header(*stream_, *serializer_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Finish(false);
                               self->FetchPage();
                             });
  }

 private:
  void FetchPage() {
    pipeline_->ListTierPage(
        tier_, after_, page_size_, profiles_, [self = shared_from_this()](pipeline::TierPage page) {
          net::post(self->stream_->get_executor(),
                    [self, p = std::move(page)]() mutable { self->WritePage(std::move(p)); });
        });
  }

  void WritePage(pipeline::TierPage page) {
    data_.clear();
    server::AppendTierPageNdjson(page, profiles_, &data_);
    const bool last = !page.more;
    if (!page.user_ids.empty()) after_ = std::move(page.user_ids.back());
    auto next = [self = shared_from_this(), last](beast::error_code ec, size_t) {
      if (ec) return self->Finish(false);
      if (!last) return self->FetchPage();
      self->WriteEnd();
    };
    if (data_.empty()) return WriteEnd();  // an empty chunk would end the body early
    stream_->expires_after(std::chrono::seconds(idle_timeout_));
    if (chunked_) {
      net::async_write(*stream_, http::make_chunk(net::buffer(data_)), std::move(next));
    } else {
      net::async_write(*stream_, net::buffer(data_), std::move(next));
    }
  }

  void WriteEnd() {
    if (!chunked_) return Finish(false);  // HTTP/1.0: closing ends the body
    stream_->expires_after(std::chrono::seconds(idle_timeout_));
    net::async_write(*stream_, http::make_chunk_last(),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->Finish(!ec && self->response_.keep_alive());
                     });
  }

  void Finish(bool keep_alive) {
    auto done = std::move(done_);
    done(keep_alive);
  }

  beast::tcp_stream* stream_;
  pipeline::Pipeline* pipeline_;
  state::Tier tier_;
  std::string after_;  // the last member written
  bool profiles_;
  size_t page_size_;
  int idle_timeout_;
  bool chunked_;
  std::function<void(bool)> done_;
  http::response<http::empty_body> response_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
  std::string data_;  // the page being written
};

// A POST body as it arrives: kept in an ingest::PaddedBuffer, which the
// decoder parses in place (no second copy), and grown with the bytes that
// actually arrive: doubling, up to the declared Content-Length, so a buffer
// is at most twice what was received. (Beast's string_body reserves the
// declared length up front: 90 connections declaring 64 MiB each reserved
// 5.9 GB.) Each growth is first charged to the server's BodyBudget; when
// the budget cannot spare it, the read fails with no_buffer_space.
struct RequestBody {
  struct value_type {
    ingest::PaddedBuffer bytes;
    BodyCharge charge;  // what `bytes` holds of the budget
  };

  class reader {
   public:
    template <bool kIsRequest, class Fields>
    reader(http::header<kIsRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<uint64_t>& length, beast::error_code& ec) {
      if (length) declared_ = *length;
      ec = {};
    }

    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      const size_t n = beast::buffer_bytes(buffers);
      ingest::PaddedBuffer& bytes = body_.bytes;
      if (bytes.size() + n > bytes.capacity()) {
        constexpr uint64_t kFirst = 64 * 1024;
        const uint64_t needed = bytes.size() + n;
        uint64_t grown = std::max<uint64_t>(2 * uint64_t{bytes.capacity()}, kFirst);
        grown = std::max(std::min(grown, declared_), needed);
        if (!body_.charge.GrowTo(grown + ingest::kPadding)) {
          ec = net::error::no_buffer_space;
          return 0;
        }
        bytes.Reserve(static_cast<size_t>(grown));
      }
      for (const auto buffer : beast::buffers_range_ref(buffers)) {
        bytes.Append(std::string_view(static_cast<const char*>(buffer.data()), buffer.size()));
      }
      ec = {};
      return n;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
    uint64_t declared_ = std::numeric_limits<uint64_t>::max();  // Content-Length, if any
  };
};

// Why a request's header does not frame it reliably (RFC 9112), if it does
// not: the request is then answered with `status` and the connection closed,
// since where its body ends, and so where the next request starts, is
// unknown. Lax framing lets bytes of a body be read as a request of their
// own (request smuggling): "Transfer-Encoding: xchunked" was taken for "no
// body" and a GET hidden in the body was answered.
struct FramingError {
  http::status status;
  std::string message;
};

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

class HttpSession : public Session, public std::enable_shared_from_this<HttpSession> {
 public:
  // `probe`: a connection beyond --max-connections, counted apart, that may
  // only ask for /healthz or /readyz (one request, within kProbeDeadline).
  HttpSession(tcp::socket socket, Server::Impl* server, Lane* lane, bool probe)
      : stream_(std::move(socket)),
        server_(server),
        lane_(lane),
        timer_(stream_.get_executor()),
        probe_(probe),
        counter_(probe ? &server->probe_connections : &server->connections),
        authenticated_(server->options.token.empty()),
        auth_deadline_(std::chrono::steady_clock::now() +
                       std::chrono::seconds(server->options.auth_timeout_seconds)) {
    counter_->fetch_add(1);
  }
  ~HttpSession() override {
    if (ticket_ != 0) server_->Authenticated(ticket_);
    counter_->fetch_sub(1);
  }

  // Counted as unauthenticated under this ticket (see Server::Impl::Admit).
  void set_ticket(uint64_t ticket) { ticket_ = ticket; }
  // (A connection that authenticated meanwhile stays.)
  void Evict() override {
    if (!authenticated_) Close();
  }
  int native_handle() { return stream_.socket().native_handle(); }

  void Start() {
    lane_->Register(shared_from_this());
    DoRead();
    if (server_->stopped.load()) Shutdown();
  }

  // A request whose header was read is answered (Connection: close); an
  // idle connection is closed.
  void Shutdown() override {
    if (!in_request_) Close();
  }
  net::any_io_executor executor() { return stream_.get_executor(); }

  // Answers 503 and closes: used when the connection limit is reached.
  // It is not lingered on (see Send): refused connections are not counted,
  // and a flood of them must not hold descriptors.
  void RefuseBusy() {
    refusing_ = true;
    http::response<http::string_body> res{http::status::service_unavailable, 11};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(false);
    res.body() = ErrorBody("too many connections");
    res.prepare_payload();
    Send(std::move(res));
  }

 private:
  using Request = http::request<RequestBody>;
  using Response = http::response<http::string_body>;
  using Clock = std::chrono::steady_clock;
  // How often a body waiting for its share of the budget looks again.
  static constexpr auto kBudgetPoll = std::chrono::milliseconds(10);

  void DoRead() {
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
  void ReadHeader() {
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
  void OnHeader(beast::error_code ec) {
    if (ec) return OnRead(ec);
    in_request_ = true;
    const auto& req = parser_->get();
    if (auto error = CheckFraming(req)) {
      return Reply(error->status, ErrorBody(error->message), false, req.version());
    }
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (probe_ && path != "/healthz" && path != "/readyz") {
      return Reply(http::status::service_unavailable, ErrorBody("too many connections"), false,
                   req.version());
    }
    if (!Authorized(req, path)) return Unauthorized(req.version(), /*keep_alive=*/false);
    if (!authenticated_ && path != "/healthz" && path != "/readyz") {
      // The first request with the token: from now on the connection is
      // held to the idle timeout, not to the authentication deadline.
      authenticated_ = true;
      if (ticket_ != 0) server_->Authenticated(std::exchange(ticket_, 0));
    }
    // A connection without the token may ask for health only, which has no
    // body: it is not given memory for one.
    const uint64_t limit = authenticated_ ? server_->options.max_body_bytes : 0;
    if (auto length = parser_->content_length(); length && *length > limit) {
      return Reply(http::status::payload_too_large, ErrorBody(BodyLimitMessage()), false,
                   req.version());
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
  void AdmitBody(Clock::time_point give_up) {
    const auto length = parser_->content_length();
    if (!length || parser_->get().body().charge.GrowTo(*length + ingest::kPadding)) {
      return StartBody();
    }
    if (server_->stopped.load() || Clock::now() >= give_up)
      return RefuseBody(parser_->get().version());
    timer_.expires_after(kBudgetPoll);
    timer_.async_wait([self = shared_from_this(), give_up](beast::error_code ec) {
      if (ec) return self->Close();
      self->AdmitBody(give_up);
    });
  }

  std::string BodyLimitMessage() const {
    if (!authenticated_) return "a request without the token takes no body";
    return "body exceeds " + std::to_string(server_->options.max_body_bytes) + " bytes";
  }

  void RefuseBody(unsigned version) {
    Reply(http::status::service_unavailable,
          ErrorBody("busy: the request bodies in flight fill --max-inflight-body-mb (" +
                    std::to_string(server_->options.max_inflight_body_bytes >> 20) +
                    " MiB); retry later"),
          false, version);
  }

  void StartBody() {
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
  void ReadBody() {
    ExpireIdle();
    http::async_read_some(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec || self->parser_->is_done()) return self->OnRead(ec);
                            self->ReadBody();
                          });
  }

  // Every request but the health endpoints needs the token, when there is
  // one: "Authorization: Bearer TOKEN", the scheme in any case (RFC 9110
  // §11.1), the token compared in constant time.
  bool Authorized(const http::request_header<>& req, std::string_view path) const {
    const std::string& token = server_->options.token;
    if (token.empty() || path == "/healthz" || path == "/readyz") return true;
    auto auth = req[http::field::authorization];
    return BearerMatches(std::string_view(auth.data(), auth.size()), token);
  }

  void Unauthorized(unsigned version, bool keep_alive) {
    Response res{http::status::unauthorized, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::www_authenticate, "Bearer");
    res.keep_alive(keep_alive);
    res.body() = ErrorBody("missing or wrong bearer token");
    res.prepare_payload();
    Send(std::move(res));
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      Reply(http::status::payload_too_large, ErrorBody(BodyLimitMessage()), false, 11);
      return;
    }
    if (ec == net::error::no_buffer_space) return RefuseBody(11);  // see RequestBody
    if (ec) {
      Reply(http::status::bad_request, ErrorBody(std::string("bad request: ") + ec.message()),
            false, 11);
      return;
    }
    request_ = parser_->release();
    Route();
  }

  void Reply(http::status status, std::string body, bool keep_alive, unsigned version) {
    Response res{status, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::server, "tierstream");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    Send(std::move(res));
  }

  // Replies from any thread: hops onto this connection's io thread first.
  void ReplyLater(http::status status, std::string body) {
    net::post(
        stream_.get_executor(), [self = shared_from_this(), status, b = std::move(body)]() mutable {
          self->Reply(status, std::move(b), self->request_.keep_alive(), self->request_.version());
        });
  }

  void Send(Response res) {
    // Shutting down, or a probe connection: this is the last answer.
    if (server_->stopped.load() || probe_) res.keep_alive(false);
    // The request is answered: its body, and its share of the budget, go.
    request_.body() = {};
    parser_.reset();
    response_ = std::make_shared<Response>(std::move(res));
    ExpireIdle();
    http::async_write(stream_, *response_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->in_request_ = false;
                        if (ec) return self->Close();
                        if (self->response_->need_eof()) {
                          return self->refusing_ ? self->Close() : self->LingerClose();
                        }
                        self->response_.reset();
                        self->DoRead();
                      });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  // The deadline of the next read or write: the idle timeout (no byte for
  // that long: set again at every read's progress, never once per request,
  // or a body streamed steadily for longer would be cut mid-way), but for a
  // connection that has not authenticated, whose whole life is bounded by
  // its authentication deadline (a slow header, a probe that lingers).
  void ExpireIdle() {
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
  void LingerClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    Discard();
  }
  void Discard() {
    if (!discard_) discard_ = std::make_unique<std::array<char, 4096>>();
    stream_.async_read_some(net::buffer(*discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->Discard();
                            });
  }

  void MethodNotAllowed(const char* allow) {
    Response res{http::status::method_not_allowed, request_.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::allow, allow);
    res.keep_alive(request_.keep_alive());
    res.body() = ErrorBody("method not allowed; use " + std::string(allow));
    res.prepare_payload();
    Send(std::move(res));
  }

  void Route() {
    std::string_view target(request_.target().data(), request_.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    std::string_view query =
        path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
    const auto method = request_.method();
    const bool keep = request_.keep_alive();
    const unsigned version = request_.version();
    // (The token was checked on the header, in OnHeader.)
    pipeline_ = server_->pipeline.load(std::memory_order_acquire);
    if (path != "/v1/events") request_.body() = {};  // only ingest reads a body
    if (path == "/healthz" || path == "/readyz") {
      if (method != http::verb::get) return MethodNotAllowed("GET");
      return path == "/healthz" ? Health() : Readiness();
    }
    if (pipeline_ == nullptr) {
      return Reply(http::status::service_unavailable, ErrorBody("starting: recovery in progress"),
                   keep, version);
    }

    if (path == "/v1/events") {
      if (method != http::verb::post) return MethodNotAllowed("POST");
      return PostEvents();
    }
    if (path == "/v1/kpis") {
      if (method != http::verb::get) return MethodNotAllowed("GET");
      pipeline_->GetKpis([self = shared_from_this()](pipeline::KpiReport kpis) {
        self->ReplyLater(http::status::ok, server::RenderKpisJson(kpis));
      });
      return;
    }
    constexpr std::string_view kUsers = "/v1/users/";
    if (path.substr(0, kUsers.size()) == kUsers) {
      if (method != http::verb::get) return MethodNotAllowed("GET");
      std::string user_id;
      if (!PercentDecode(path.substr(kUsers.size()), &user_id)) {
        return Reply(http::status::bad_request, ErrorBody("user_id: malformed percent-encoding"),
                     keep, version);
      }
      if (user_id.empty() || user_id.size() > 128) {
        return Reply(http::status::bad_request, ErrorBody("user_id: must be 1..128 bytes"), keep,
                     version);
      }
      pipeline_->GetUser(std::move(user_id), [self = shared_from_this()](
                                                 std::optional<pipeline::ProfileReport> profile) {
        if (profile) return self->ReplyLater(http::status::ok, server::RenderProfileJson(*profile));
        self->ReplyLater(http::status::not_found, ErrorBody("unknown user"));
      });
      return;
    }
    constexpr std::string_view kTiers = "/v1/tiers/";
    if (path.substr(0, kTiers.size()) == kTiers) {
      std::string_view rest = path.substr(kTiers.size());
      size_t slash = rest.find('/');
      if (slash == std::string_view::npos || rest.substr(slash) != "/users") {
        return Reply(http::status::not_found, ErrorBody("no such resource"), keep, version);
      }
      if (method != http::verb::get) return MethodNotAllowed("GET");
      auto tier = state::ParseTier(rest.substr(0, slash));
      if (!tier) {
        return Reply(http::status::bad_request,
                     ErrorBody("tier: must be one of left, high_value, new, active, dormant, "
                               "regular"),
                     keep, version);
      }
      constexpr const char* kParams[] = {"limit", "after", "format", "fields"};
      std::optional<std::string> params[4];
      for (size_t i = 0; i < 4; ++i) {
        bool malformed = false;
        params[i] = QueryParam(query, kParams[i], &malformed);
        if (malformed) {
          return Reply(http::status::bad_request,
                       ErrorBody(std::string(kParams[i]) + ": malformed percent-encoding"), keep,
                       version);
        }
      }
      const auto& [limit_param, after_param, format_param, fields_param] = params;
      const bool ndjson = format_param == "ndjson";
      if (format_param && !ndjson && *format_param != "json") {
        return Reply(http::status::bad_request, ErrorBody("format: must be json or ndjson"), keep,
                     version);
      }
      if (fields_param && *fields_param != "profile") {
        return Reply(http::status::bad_request, ErrorBody("fields: must be profile"), keep,
                     version);
      }
      if (fields_param && !ndjson) {
        return Reply(http::status::bad_request, ErrorBody("fields: needs format=ndjson"), keep,
                     version);
      }
      std::string after = after_param.value_or("");
      if (ndjson) {
        if (limit_param) {
          return Reply(http::status::bad_request,
                       ErrorBody("limit: not with format=ndjson, which streams the whole tier "
                                 "(after= resumes it)"),
                       keep, version);
        }
        auto stream = std::make_shared<TierStream>(
            &stream_, pipeline_, *tier, std::move(after), fields_param.has_value(),
            server_->options, version, keep, [self = shared_from_this()](bool keep_alive) {
              if (keep_alive) {
                self->DoRead();
              } else {
                self->Close();
              }
            });
        stream->Start();
        return;
      }
      size_t limit = 100;
      if (limit_param) {
        const std::string& l = *limit_param;
        unsigned long v = 0;
        auto r = std::from_chars(l.data(), l.data() + l.size(), v);
        if (r.ec != std::errc() || r.ptr != l.data() + l.size() || v < 1 || v > 10000) {
          return Reply(http::status::bad_request,
                       ErrorBody("limit: must be an integer in 1..10000"), keep, version);
        }
        limit = v;
      }
      pipeline_->ListTierPage(*tier, std::move(after), limit, false /*with_profiles*/,
                              [self = shared_from_this(), tier = *tier](pipeline::TierPage page) {
                                self->ReplyLater(http::status::ok,
                                                 server::RenderTierPageJson(tier, page));
                              });
      return;
    }
    Reply(http::status::not_found, ErrorBody("no such resource"), keep, version);
  }

  // Why ingest is not possible right now; empty when it is.
  std::vector<std::string> NotReadyReasons() const {
    if (pipeline_ == nullptr) return {"recovering"};
    return pipeline_->IngestRefusals();
  }

  // Readiness: may this instance take traffic (ingest) now?
  void Readiness() {
    const std::vector<std::string> reasons = NotReadyReasons();
    std::string body;
    JsonWriter w(&body);
    w.BeginObject().Key("ready").Bool(reasons.empty());
    if (!reasons.empty()) {
      w.Key("reasons").BeginArray();
      for (const auto& r : reasons) w.String(r);
      w.EndArray();
    }
    w.EndObject();
    Reply(reasons.empty() ? http::status::ok : http::status::service_unavailable, std::move(body),
          request_.keep_alive(), request_.version());
  }

  // Liveness (200 whenever the process answers) with the operational figures:
  // "status" is "ok", "degraded" (ingest refused; see "reasons") or
  // "starting" (recovery runs; no figures yet).
  void Health() {
    std::vector<std::string> reasons = NotReadyReasons();
    if (pipeline_ == nullptr) {
      return Reply(http::status::ok, server::RenderHealthJson("starting", reasons, kNoTs, nullptr),
                   request_.keep_alive(), request_.version());
    }
    const int64_t t = pipeline_->watermark();
    pipeline_->GetStats([self = shared_from_this(), t,
                         reasons = std::move(reasons)](pipeline::PipelineStats stats) {
      const char* status = reasons.empty() ? "ok" : "degraded";
      self->ReplyLater(http::status::ok, server::RenderHealthJson(status, reasons, t, &stats));
    });
  }

  void PostEvents() {
    // Backpressure: wait while the pipeline holds more than its bound.
    if (!pipeline_->HasCapacity()) {
      timer_.expires_after(std::chrono::milliseconds(1));
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->Close();
        self->PostEvents();
      });
      return;
    }
    if (pipeline_->DiskLow()) {
      // Refuse the body whole rather than take part of it.
      IngestSummary refused;
      refused.status = Status::Unavailable(
          "disk space is below the watermark; ingest resumes when space returns");
      return Reply(http::status::service_unavailable, refused.ToJson(), request_.keep_alive(),
                   request_.version());
    }
    ingest_ = std::make_shared<IngestSession>(pipeline_, "http");
    Status s = ingest_->BeginWhole(request_.body().bytes);
    if (!s.ok()) {
      ingest_.reset();
      return Reply(http::status::bad_request, ErrorBody(s.message()), request_.keep_alive(),
                   request_.version());
    }
    FeedBody();
  }

  // Submits the body slice by slice, pausing while the pipeline is full, as
  // a TCP producer's reads do: the events decoded from bodies stay within
  // the pipeline's in-flight bound too, rather than a whole body's worth
  // past it per request. Then the body goes, and the answer waits for the
  // batches.
  void FeedBody() {
    for (bool done = false; !done;) {
      if (!pipeline_->HasCapacity()) {
        timer_.expires_after(std::chrono::milliseconds(1));
        timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
          if (ec) return self->Close();
          self->FeedBody();
        });
        return;
      }
      done = ingest_->FeedWholeSlice();
      if (!done) {
        // One slice per turn: a body of 64 MiB of bad lines (which never
        // fill the pipeline) takes seconds to decode, and the other
        // connections of this thread, the listeners on lane 0 among them,
        // must not wait for all of it.
        net::post(stream_.get_executor(), [self = shared_from_this()] { self->FeedBody(); });
        return;
      }
    }
    request_.body() = {};
    std::shared_ptr<IngestSession> ingest = std::move(ingest_);
    ingest->Finish([self = shared_from_this()](IngestSummary summary) {
      self->ReplyLater(summary.status.ok() ? http::status::ok : http::status::service_unavailable,
                       summary.ToJson());
    });
  }

  beast::tcp_stream stream_;
  Server::Impl* server_;
  Lane* lane_;
  net::steady_timer timer_;
  const bool probe_;
  std::atomic<int>* const counter_;  // the connection count this one is in
  bool authenticated_;               // a request carried the token (or none is needed)
  const std::chrono::steady_clock::time_point auth_deadline_;
  uint64_t ticket_ = 0;                     // counted as unauthenticated under it (0: not counted)
  pipeline::Pipeline* pipeline_ = nullptr;  // as of the current request; null while recovering
  bool in_request_ = false;                 // from a read header to the answer written
  bool refusing_ = false;                   // answered 503 on accept: closed at once
  // What was read but not parsed yet: a header (at most 64 KiB) and one
  // read (at most 64 KiB). Capped, since Beast bounds neither a chunk-size
  // line (chunk extensions) nor its buffer: 4 connections sending 16 MiB of
  // extension each grew the server by 112 MB. Past the cap the read fails
  // (buffer_overflow: 400).
  beast::flat_buffer buffer_{256 * 1024};
  std::optional<http::request_parser<RequestBody>> parser_;
  Request request_;
  std::shared_ptr<IngestSession> ingest_;  // the POST body being submitted
  std::shared_ptr<Response> response_;
  std::unique_ptr<std::array<char, 4096>> discard_;  // LingerClose's sink
};

// ---- TCP ingest ---------------------------------------------------------------

// One producer connection. While it sends, it gets ack lines of its durable
// prefix (IngestProgress), at most one per kAckInterval and only when the
// prefix grew. Its input ends at half-close (the incomplete last line counts),
// at the idle timeout, at shutdown or when a batch is refused (then an
// incomplete last line is dropped); once the submitted batches are done it
// gets the final line (IngestSummary::ToStreamJson) and the connection is
// closed. Confined to its lane's thread but for the progress notification.
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
    server_->connections.fetch_add(1);
  }
  ~TcpSession() override {
    if (ticket_ != 0) server_->Authenticated(ticket_);
    server_->connections.fetch_sub(1);
  }

  // Counted as unauthenticated under this ticket (see Server::Impl::Admit).
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
    ingest_ = std::make_shared<IngestSession>(pipeline_, "tcp");
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
      if (ticket_ != 0) server_->Authenticated(std::exchange(ticket_, 0));
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

Status Server::Impl::Bind(tcp::acceptor* acceptor, const std::string& address, const char* what) {
  std::string host;
  uint16_t port;
  if (!SplitHostPort(address, &host, &port)) {
    return Status::InvalidArgument(std::string("--") + what + ": expected HOST:PORT, got '" +
                                   address + "'");
  }
  beast::error_code ec;
  std::vector<tcp::endpoint> endpoints;
  auto ip = net::ip::make_address(host, ec);
  if (!ec) {
    endpoints.emplace_back(ip, port);
  } else {
    // A host name ("localhost"), as the clients accept: listen on the first
    // of its addresses that binds, IPv4 first, since 127.0.0.1 is what the
    // defaults and every example use.
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
    if (ec) {
      return Status::InvalidArgument(std::string("--") + what + ": cannot resolve '" + host +
                                     "': " + ec.message());
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
    std::stable_partition(endpoints.begin(), endpoints.end(),
                          [](const tcp::endpoint& e) { return e.address().is_v4(); });
  }
  for (const tcp::endpoint& endpoint : endpoints) {
    ec.clear();
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (!ec) return Status::Ok();
    beast::error_code ignored;
    acceptor->close(ignored);
  }
  return Status::IoError(std::string("cannot listen on ") + address + " (" + what +
                         "): " + ec.message());
}

Server::Impl::Admission Server::Impl::Admit(tcp::socket& socket, bool http) {
  Admission admission;
  const bool full = connections.load() >= options.max_connections;
  auto refuse = [&] {
    admission.probe = http && probe_connections.load() < kMaxProbeConnections;
    admission.busy = !admission.probe;
    return admission;
  };
  if (options.token.empty()) return full ? refuse() : admission;
  admission.counted_unauthenticated = !PresentsToken(socket.native_handle(), http, options.token);
  std::lock_guard<std::mutex> lock(unauth_mu);
  const bool share_full =
      admission.counted_unauthenticated && unauthenticated.size() >= MaxUnauthenticated();
  if (!full && !share_full) return admission;
  if (unauthenticated.empty()) return refuse();  // every slot is held by an authenticated client
  // The oldest goes, unless the token has just arrived on it (its session
  // has not read it yet): then the next oldest, of the first few.
  auto victim = unauthenticated.begin();
  int scanned = 0;
  for (auto it = victim; it != unauthenticated.end() && scanned < 8; ++it, ++scanned) {
    if (!PresentsToken(it->second.fd, it->second.http, options.token)) {
      victim = it;
      break;
    }
  }
  net::post(victim->second.lane->ioc, [weak = victim->second.session] {
    if (auto session = weak.lock()) session->Evict();
  });
  unauthenticated.erase(victim);
  return admission;
}

uint64_t Server::Impl::AddUnauthenticated(std::weak_ptr<Session> session, Lane* lane, int fd,
                                          bool http) {
  std::lock_guard<std::mutex> lock(unauth_mu);
  const uint64_t ticket = next_ticket++;
  unauthenticated.emplace(ticket, Unauthenticated{std::move(session), lane, fd, http});
  return ticket;
}

void Server::Impl::Authenticated(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(unauth_mu);
  unauthenticated.erase(ticket);
}

void Server::Impl::AcceptHttp() {
  Lane& lane = NextLane();
  http_acceptor.async_accept(lane.ioc, [this, &lane](beast::error_code ec, tcp::socket s) {
    if (ec) {
      if (!stopped.load() && http_acceptor.is_open()) RetryAccept([this] { AcceptHttp(); });
      return;
    }
    s.set_option(tcp::no_delay(true), ec);
    // Beyond the limit, a few more may ask for health (see kMaxProbeConnections).
    const Admission admission = Admit(s, /*http=*/true);
    auto session = std::make_shared<HttpSession>(std::move(s), this, &lane, admission.probe);
    const bool busy = admission.busy;
    if (!busy && !admission.probe && admission.counted_unauthenticated) {
      session->set_ticket(AddUnauthenticated(session, &lane, session->native_handle(), true));
    }
    // The session lives on its socket's lane from its first handler on.
    net::post(session->executor(),
              [session, busy] { busy ? session->RefuseBusy() : session->Start(); });
    AcceptHttp();
  });
}

void Server::Impl::AcceptTcp() {
  Lane& lane = NextLane();
  tcp_acceptor.async_accept(lane.ioc, [this, &lane](beast::error_code ec, tcp::socket s) {
    if (ec) {
      if (!stopped.load() && tcp_acceptor.is_open()) RetryAccept([this] { AcceptTcp(); });
      return;
    }
    const Admission admission = Admit(s, /*http=*/false);
    auto session = std::make_shared<TcpSession>(std::move(s), this, &lane);
    const bool busy = admission.busy;
    if (!busy && admission.counted_unauthenticated) {
      session->set_ticket(AddUnauthenticated(session, &lane, session->native_handle(), false));
    }
    net::post(session->executor(),
              [session, busy] { busy ? session->RefuseBusy() : session->Start(); });
    AcceptTcp();
  });
}

Server::Server(pipeline::Pipeline* pipeline, ServerOptions options)
    : impl_(std::make_unique<Impl>(pipeline, std::move(options))) {}
Server::~Server() = default;

Status Server::Start() {
  const ServerOptions& o = impl_->options;
  if (o.max_inflight_body_bytes < ingest::kPadding ||
      o.max_body_bytes > o.max_inflight_body_bytes - ingest::kPadding) {
    return Status::InvalidArgument("--max-body-bytes (" + std::to_string(o.max_body_bytes) +
                                   ") must be below --max-inflight-body-mb (" +
                                   std::to_string(o.max_inflight_body_bytes >> 20) +
                                   " MiB): a body that large could never be read");
  }
  if (!impl_->options.http_address.empty()) {
    Status s = impl_->Bind(&impl_->http_acceptor, impl_->options.http_address, "http");
    if (!s.ok()) return s;
    impl_->AcceptHttp();
  }
  if (impl_->pipeline.load() != nullptr && !impl_->options.tcp_address.empty()) {
    Status s = impl_->Bind(&impl_->tcp_acceptor, impl_->options.tcp_address, "tcp");
    if (!s.ok()) return s;
    impl_->AcceptTcp();
  }
  // Installed here, not in Run(): a signal during recovery must drain too.
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->signals.async_wait([this](beast::error_code ec, int sig) {
    if (ec) return;
    Log(LogLevel::kInfo, "tierstream: signal %d: draining and shutting down", sig);
    Stop();
  });
  return Status::Ok();
}

Status Server::AttachPipeline(pipeline::Pipeline* pipeline) {
  if (impl_->stopped.load()) return Status::Unavailable("the server is stopping");
  impl_->pipeline.store(pipeline, std::memory_order_release);
  if (impl_->options.tcp_address.empty()) return Status::Ok();
  // The acceptor is not in use yet: bind here (to report errors), accept on lane 0.
  Status s = impl_->Bind(&impl_->tcp_acceptor, impl_->options.tcp_address, "tcp");
  if (!s.ok()) return s;
  net::post(impl_->ioc, [this] {
    if (!impl_->stopped.load()) impl_->AcceptTcp();
  });
  return Status::Ok();
}

void Server::Run() {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->lanes.size(); ++i) {
    threads.emplace_back([this, i] { impl_->lanes[i]->ioc.run(); });
  }
  impl_->ioc.run();
  for (auto& t : threads) t.join();
}

void Server::Impl::AwaitDrain(std::chrono::steady_clock::time_point deadline) {
  if (connections.load() + probe_connections.load() == 0 ||
      std::chrono::steady_clock::now() >= deadline) {
    for (auto& lane : lanes) lane->ioc.stop();
    return;
  }
  auto timer = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(10));
  timer->async_wait([this, timer, deadline](beast::error_code) { AwaitDrain(deadline); });
}

void Server::Stop() {
  net::post(impl_->ioc, [this] {
    if (impl_->stopped.exchange(true)) return;
    beast::error_code ignored;
    impl_->http_acceptor.close(ignored);
    impl_->tcp_acceptor.close(ignored);
    impl_->signals.cancel(ignored);
    // Every connection answers what it took (TCP: its final summary once its
    // batches are durable; HTTP: the request in flight) and closes; a few
    // seconds at most, then the lanes stop regardless.
    for (auto& lane : impl_->lanes) {
      net::post(lane->ioc, [lane = lane.get()] { lane->ShutdownSessions(); });
    }
    impl_->AwaitDrain(std::chrono::steady_clock::now() +
                      std::chrono::seconds(impl_->options.shutdown_grace_seconds));
  });
}

uint16_t Server::http_port() const {
  beast::error_code ec;
  auto ep = impl_->http_acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

uint16_t Server::tcp_port() const {
  beast::error_code ec;
  auto ep = impl_->tcp_acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

}  // namespace tierstream::app
