// Lane: one io_context run by exactly one thread, and Session, a
// connection as the shutdown sequence and Admission see it.
//
// Every handler of a connection runs on its lane's thread, so the batches a
// connection submits leave one producer thread in stream order, and the
// pipeline's queues keep FIFO order only per producer thread (a strand on a
// shared io_context hops threads, which let a later batch overtake an
// earlier one). Thread safety: a Lane's members but `ioc` are confined to
// its thread.
#ifndef TIERSTREAM_SERVER_LANE_H_
#define TIERSTREAM_SERVER_LANE_H_

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange
#include <vector>

namespace tierstream::server {

class Session {
 public:
  virtual ~Session() = default;
  // On its lane's thread: take no new request or input, answer what is in
  // flight, then close.
  virtual void Shutdown() = 0;
  // On its lane's thread: close now. The connection never authenticated and
  // its slot is wanted (see Admission::Admit).
  virtual void Evict() = 0;
};

struct Lane {
  Lane() : ioc(1), work(boost::asio::make_work_guard(ioc)) {}
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

  boost::asio::io_context ioc;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
  std::vector<std::weak_ptr<Session>> sessions;  // this lane's connections
  size_t prune_at = 64;
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_LANE_H_
