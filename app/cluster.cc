#include "app/cluster.h"

#include <unistd.h>

#include <atomic>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "common/host_port.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_name.h"
#include "kafka/event_producer.h"
#include "kafka/members.h"
#include "pipeline/batch.h"
#include "pipeline/pipeline.h"
#include "tools/client.h"

namespace tierstream::app {

namespace {
constexpr int kThreads = 4;
constexpr size_t kMaxQueued = 256;
constexpr int kTimeoutSeconds = 3;
}  // namespace

struct Cluster::Impl {
  std::string token;
  // Set by Start, read by the hooks.
  std::atomic<kafka::Members*> members{nullptr};
  std::unique_ptr<kafka::Members> owned_members;
  // POST /v1/events: into the input topic.
  std::atomic<kafka::EventProducer*> producer{nullptr};
  std::unique_ptr<kafka::EventProducer> owned_producer;

  struct Get {
    std::string address, target;
    server::ClusterHooks::GetDone done;
  };
  Mutex mu;
  CondVar cv{&mu};
  std::deque<Get> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::vector<std::thread> threads;

  void Enqueue(Get get) {
    {
      MutexLock lock(&mu);
      if (!stopping && queue.size() < kMaxQueued) {
        queue.push_back(std::move(get));
        cv.Signal();
        return;
      }
    }
    get.done(0, "too many queries are being forwarded; ask again shortly");
  }

  void Run() {
    for (;;) {
      Get get;
      {
        MutexLock lock(&mu);
        while (!stopping && queue.empty()) cv.Wait();
        if (queue.empty()) return;
        get = std::move(queue.front());
        queue.pop_front();
      }
      auto r = tools::HttpRequest(get.address, "GET", get.target, {}, kTimeoutSeconds, token,
                                  {{server::kForwardedHeader, "1"}});
      if (r.ok()) {
        get.done(r->status, std::move(r->body));
      } else {
        get.done(0, r.status().ToString());
      }
    }
  }
};

Cluster::Cluster(std::string token) : impl_(std::make_shared<Impl>()) {
  impl_->token = std::move(token);
  for (int i = 0; i < kThreads; ++i)
    impl_->threads.emplace_back([d = impl_.get()] {
      NameThisThread("peer-get");
      d->Run();
    });
}

Cluster::~Cluster() { Stop(); }

server::ClusterHooks Cluster::Hooks() {
  server::ClusterHooks hooks;
  std::weak_ptr<Impl> weak = impl_;
  hooks.owner_of = [weak](uint32_t partition) -> std::string {
    auto d = weak.lock();
    kafka::Members* m = d ? d->members.load(std::memory_order_acquire) : nullptr;
    return m == nullptr ? std::string() : m->OwnerOf(partition);
  };
  hooks.peers = [weak] {
    std::vector<std::string> addresses;
    auto d = weak.lock();
    kafka::Members* m = d ? d->members.load(std::memory_order_acquire) : nullptr;
    if (m == nullptr) return addresses;
    for (const kafka::MemberInfo& peer : m->Peers()) addresses.push_back(peer.address);
    return addresses;
  };
  hooks.get = [weak](const std::string& address, const std::string& target,
                     server::ClusterHooks::GetDone done) {
    auto d = weak.lock();
    if (!d) return done(0, "shutting down");
    d->Enqueue(Impl::Get{address, target, std::move(done)});
  };
  hooks.produce_events = [weak](const ingest::PaddedBuffer& body,
                                server::ClusterHooks::GetDone done) {
    auto d = weak.lock();
    kafka::EventProducer* producer = d ? d->producer.load(std::memory_order_acquire) : nullptr;
    if (producer == nullptr) {
      return done(503, "{\"error\":\"starting: not producing to Kafka yet\"}");
    }
    producer->Produce(body, [done = std::move(done)](kafka::ProduceSummary summary) {
      done(summary.status.ok() ? 200 : 503, summary.ToJson());
    });
  };
  hooks.produce_lines = [weak](std::string_view lines, uint64_t first_line,
                               std::function<void(pipeline::BatchOutcome)> done) {
    auto d = weak.lock();
    kafka::EventProducer* producer = d ? d->producer.load(std::memory_order_acquire) : nullptr;
    if (producer == nullptr) {
      pipeline::BatchOutcome refused;
      refused.status = Status::Unavailable("starting: not producing to Kafka yet");
      return done(std::move(refused));
    }
    producer->ProduceLines(lines, first_line, std::move(done));
  };
  return hooks;
}

Status Cluster::Start(const kafka::KafkaOptions& options, const std::string& address,
                      kafka::KafkaIngest* ingest, pipeline::Pipeline* pipeline) {
  kafka::Members::Own own;
  own.instance = kafka::InstanceName(options);
  own.address = address;
  own.partitions = [ingest] { return ingest->OwnedPartitions(); };
  own.watermark = [pipeline] { return pipeline->watermark(); };
  auto members = kafka::Members::Start(options, std::move(own),
                                       [pipeline](int64_t t) { pipeline->ObserveWatermark(t); });
  if (!members.ok()) return members.status();
  impl_->owned_members = std::move(members).value();
  impl_->members.store(impl_->owned_members.get(), std::memory_order_release);
  auto producer = kafka::EventProducer::Start(options);
  if (!producer.ok()) return producer.status();
  impl_->owned_producer = std::move(producer).value();
  impl_->producer.store(impl_->owned_producer.get(), std::memory_order_release);
  Log(LogLevel::kInfo, "tierstream: kafka: this instance is %s at %s in %s",
      kafka::InstanceName(options).c_str(), address.c_str(),
      kafka::InternalTopic(options, "members").c_str());
  return Status::Ok();
}

void Cluster::Stop() {
  {
    MutexLock lock(&impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    impl_->cv.SignalAll();
  }
  for (std::thread& t : impl_->threads) t.join();
  impl_->members.store(nullptr, std::memory_order_release);
  impl_->owned_members.reset();  // its last record: it owns nothing now
  // The listeners stopped before: no body is being produced.
  impl_->producer.store(nullptr, std::memory_order_release);
  impl_->owned_producer.reset();
}

std::string Cluster::Advertised(const std::string& advertise, const std::string& http,
                                uint16_t port) {
  if (!advertise.empty()) return advertise;
  std::string host;
  uint16_t ignored = 0;
  if (!SplitHostPort(http, &host, &ignored) || host == "0.0.0.0" || host == "::" || host.empty()) {
    char name[256] = "";
    ::gethostname(name, sizeof name - 1);
    host = name;
  }
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

}  // namespace tierstream::app
