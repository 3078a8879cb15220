// Server::Impl: what the listener (server/listener.cc) and its connection
// sessions share. Internal to server/. Thread safety: the atomics and
// Admission are thread-safe; the acceptors, signals and next_lane are
// touched on lane 0 only; options are immutable after construction.
#ifndef TIERSTREAM_SERVER_SERVER_IMPL_H_
#define TIERSTREAM_SERVER_SERVER_IMPL_H_

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/admission.h"
#include "server/body_budget.h"
#include "server/http_api.h"
#include "server/lane.h"
#include "server/server.h"

namespace tierstream::server {

struct Server::Impl {
  Impl(pipeline::Pipeline* p, ServerOptions o);

  // Null until AttachPipeline(): recovery is running.
  std::atomic<pipeline::Pipeline*> pipeline;
  const ServerOptions options;
  // Every request body held, from its first byte until it is decoded
  // (--max-inflight-body-mb). Before the lanes, like the counters below.
  BodyBudget body_budget{options.max_inflight_body_bytes};
  // Declared before the lanes: destroying an io_context destroys the
  // handlers it still holds, and with them sessions that count themselves out.
  Admission admission;
  std::atomic<bool> stopped{false};
  std::atomic<bool> failed{false};  // an io thread caught an exception
  HttpApi api;
  std::vector<std::unique_ptr<Lane>> lanes;
  // Lane 0: the acceptors, the signals and the shutdown sequence.
  boost::asio::io_context& ioc;
  size_t next_lane = 0;  // round-robin over lanes; touched on lane 0 only
  boost::asio::ip::tcp::acceptor http_acceptor;
  boost::asio::ip::tcp::acceptor tcp_acceptor;
  boost::asio::signal_set signals;

  Status Bind(boost::asio::ip::tcp::acceptor* acceptor, const std::string& address,
              const char* what);
  // After an accept error (out of file descriptors, say), waits a moment
  // instead of spinning on it.
  void RetryAccept(std::function<void()> fn);
  void AcceptHttp();
  void AcceptTcp();
  // The lane of the next accepted connection.
  Lane& NextLane() { return *lanes[next_lane++ % lanes.size()]; }
  // Stops the lanes once every connection has closed, or at the deadline.
  void AwaitDrain(std::chrono::steady_clock::time_point deadline);
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_SERVER_IMPL_H_
