// Binds the listeners, accepts connections onto the lanes, and runs and
// drains the lanes: the life cycle of `tierstream serve`'s network front.
#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange
#include <vector>

#include "common/host_port.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "server/http_session.h"
#include "server/server.h"
#include "server/server_impl.h"
#include "server/tcp_ingest_session.h"

namespace tierstream::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

std::vector<std::unique_ptr<Lane>> MakeLanes(int n) {
  std::vector<std::unique_ptr<Lane>> lanes;
  for (int i = 0; i < std::max(n, 1); ++i) lanes.push_back(std::make_unique<Lane>());
  return lanes;
}

}  // namespace

Server::Impl::Impl(pipeline::Pipeline* p, ServerOptions o)
    : pipeline(p),
      options(std::move(o)),
      admission(options.max_connections, options.max_unauthenticated, options.token),
      api(&pipeline, options.tier_export_page, options.webhook_stats),
      lanes(MakeLanes(options.io_threads)),
      ioc(lanes[0]->ioc),
      http_acceptor(ioc),
      tcp_acceptor(ioc),
      signals(ioc) {
  api.SetEventsElsewhere(options.events_elsewhere);
  api.SetInputStats(options.input_stats);
  api.SetCluster(options.cluster);
}

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

void Server::Impl::RetryAccept(std::function<void()> fn) {
  auto timer = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(20));
  timer->async_wait([timer, fn = std::move(fn)](beast::error_code) { fn(); });
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
    const Admission::Decision decision = admission.Admit(s.native_handle(), /*http=*/true);
    auto session = std::make_shared<HttpSession>(std::move(s), this, &lane, decision.probe);
    const bool busy = decision.busy;
    if (!busy && !decision.probe && decision.counted_unauthenticated) {
      session->set_ticket(
          admission.AddUnauthenticated(session->native_handle(), /*http=*/true,
                                       [weak = std::weak_ptr<Session>(session), lane = &lane] {
                                         net::post(lane->ioc, [weak] {
                                           if (auto victim = weak.lock()) victim->Evict();
                                         });
                                       }));
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
    StartTcpIngestSession(std::move(s), this, &lane);
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
    RETURN_IF_ERROR(impl_->Bind(&impl_->http_acceptor, impl_->options.http_address, "http"));
    impl_->AcceptHttp();
  }
  if (impl_->pipeline.load() != nullptr && !impl_->options.tcp_address.empty()) {
    RETURN_IF_ERROR(impl_->Bind(&impl_->tcp_acceptor, impl_->options.tcp_address, "tcp"));
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
  RETURN_IF_ERROR(impl_->Bind(&impl_->tcp_acceptor, impl_->options.tcp_address, "tcp"));
  net::post(impl_->ioc, [this] {
    if (!impl_->stopped.load()) impl_->AcceptTcp();
  });
  return Status::Ok();
}

void Server::Run() {
  // The entry of every io thread: an exception out of a handler is logged
  // and shuts the server down cleanly (connections answer what they took);
  // the lane goes on running so that its connections can drain.
  auto run_lane = [this](size_t i) {
    NameThisThread("io-" + std::to_string(i));
    for (;;) {
      try {
        impl_->lanes[i]->ioc.run();
        return;
      } catch (const std::exception& e) {
        Log(LogLevel::kError, "tierstream: io thread %zu: %s; shutting down", i, e.what());
      } catch (...) {
        Log(LogLevel::kError, "tierstream: io thread %zu: unknown exception; shutting down", i);
      }
      impl_->failed.store(true);
      Stop();
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->lanes.size(); ++i) threads.emplace_back(run_lane, i);
  run_lane(0);
  for (auto& t : threads) t.join();
}

bool Server::failed() const { return impl_->failed.load(); }

void Server::Impl::AwaitDrain(std::chrono::steady_clock::time_point deadline) {
  if (admission.connections.load() + admission.probe_connections.load() == 0 ||
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

}  // namespace tierstream::server
