#include "kafka/change_publisher.h"

#include <chrono>
#include <deque>
#include <thread>
#include <utility>

#include "common/json_writer.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_name.h"
#include "kafka/client.h"
#include "state/tier_change.h"

namespace tierstream::kafka {

namespace {
constexpr size_t kMaxQueued = 64;
}  // namespace

Status RenderPublishedChange(std::string_view encoded, uint32_t partition, uint64_t generation,
                             std::string* json, std::string* user_id) {
  state::TierChange c;
  Status s = state::DecodeTierChange(encoded, &c);
  if (!s.ok()) return s;
  json->clear();
  JsonWriter jw(json);
  jw.BeginObject();
  state::WriteTierChangeFields(jw, c);
  jw.Key("partition").Int(partition);
  jw.Key("generation").Int(static_cast<int64_t>(generation)).EndObject();
  *user_id = std::move(c.user_id);
  return Status::Ok();
}

struct ChangePublisher::Impl {
  struct Job {
    uint32_t partition = 0;
    uint64_t generation = 0;
    uint64_t checkpoint = 0;
    std::vector<std::string> changes;
    std::future<int64_t> marker;
  };

  KafkaOptions options;
  Hooks hooks;
  std::string topic;
  rd_kafka_t* producer = nullptr;
  std::atomic<bool> stopping{false};  // Produce's: never set (queue full: it waits)
  // Once stopping: when waiting for markers and acknowledgements ends
  // (steady clock ticks; 0: not stopping).
  std::atomic<int64_t> give_up_at{0};
  std::atomic<uint64_t> published{0}, fenced{0}, failures{0};

  Mutex mu;
  CondVar cv{&mu};
  std::deque<Job> jobs ABSL_GUARDED_BY(mu);
  bool closing ABSL_GUARDED_BY(mu) = false;
  std::thread thread;

  ~Impl() {
    if (producer != nullptr) {
      CloseProducer(producer, 10'000);
    }
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    static_cast<Impl*>(opaque)->failures.fetch_add(1);
    Log(LogLevel::kError, "tierstream: kafka: a change for %s[%d] was not delivered: %s",
        rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
  }

  // Produces the changes and waits for their acknowledgements.
  Status ProduceAll(uint32_t p, uint64_t generation, std::span<const std::string_view> changes) {
    const uint64_t failures_before = failures.load();
    std::string json, user_id;
    for (std::string_view encoded : changes) {
      Status s = RenderPublishedChange(encoded, p, generation, &json, &user_id);
      if (!s.ok()) {
        return Status::Corruption("a tier change of partition " + std::to_string(p) +
                                  " does not decode: " + s.ToString());
      }
      s = Produce(producer, topic, RD_KAFKA_PARTITION_UA, user_id, json, nullptr, stopping);
      if (!s.ok()) return s;
    }
    while (rd_kafka_flush(producer, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      if (GivingUp()) return Status::Unavailable("stopping before changes were acknowledged");
    }
    if (failures.load() != failures_before) {
      return Status::Unavailable("producing to " + topic + " failed");
    }
    published.fetch_add(changes.size(), std::memory_order_relaxed);
    return Status::Ok();
  }

  void Run() {
    for (;;) {
      Job job;
      {
        MutexLock lock(&mu);
        while (!closing && jobs.empty()) cv.Wait();
        if (jobs.empty()) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      cv.SignalAll();
      Handle(&job);
    }
  }

  // Stopping, and what is left has had its grace period.
  bool GivingUp() {
    const int64_t deadline = give_up_at.load(std::memory_order_acquire);
    return deadline != 0 && std::chrono::steady_clock::now().time_since_epoch().count() > deadline;
  }

  void Handle(Job* job) {
    while (job->marker.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      if (GivingUp()) return;  // unpublished: the partition's next owner produces them
      if (hooks.serve_deliveries) {
        hooks.serve_deliveries();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    const int64_t marker = job->marker.get();
    if (marker < 0) return;  // the checkpoint is not in the changelog
    Result<bool> owns = hooks.owns(job->partition, job->generation, marker);
    if (!owns.ok() || !*owns) {
      fenced.fetch_add(1, std::memory_order_relaxed);
      Log(LogLevel::kWarning,
          "tierstream: kafka: partition %u: the changes of checkpoint %llu are not published: %s",
          job->partition, static_cast<unsigned long long>(job->checkpoint),
          owns.ok() ? "another member claimed the partition before its marker"
                    : owns.status().ToString().c_str());
      return;
    }
    std::vector<std::string_view> views(job->changes.begin(), job->changes.end());
    Status s = ProduceAll(job->partition, job->generation, views);
    if (!s.ok()) {
      // Unpublished: the partition's next owner produces them.
      Log(LogLevel::kError, "tierstream: kafka: partition %u: publishing changes: %s",
          job->partition, s.ToString().c_str());
      return;
    }
    hooks.published(job->partition, job->generation, job->checkpoint);
  }
};

ChangePublisher::ChangePublisher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChangePublisher::~ChangePublisher() { Stop(); }

Result<std::unique_ptr<ChangePublisher>> ChangePublisher::Start(const KafkaOptions& options,
                                                                Hooks hooks) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->hooks = std::move(hooks);
  impl->topic = InternalTopic(options, "changes");
  // Never gives a change up (message.timeout.ms 0): a checkpoint's changes
  // are published whole or its published record is not written.
  auto conf = NewConf(options, {{"enable.idempotence", "true"},
                                {"linger.ms", "5"},
                                {"message.timeout.ms", "0"},
                                {"partitioner", "murmur2_random"},
                                {"client.id", "tierstream-changes"}});
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_opaque(*conf, impl.get());
  rd_kafka_conf_set_dr_msg_cb(*conf, Impl::OnDelivery);
  auto producer = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!producer.ok()) return producer.status();
  impl->producer = *producer;
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    NameThisThread("kafka-publish");
    raw->Run();
  });
  return std::unique_ptr<ChangePublisher>(new ChangePublisher(std::move(impl)));
}

void ChangePublisher::Publish(uint32_t p, uint64_t generation, uint64_t checkpoint,
                              std::vector<std::string> changes, std::future<int64_t> marker) {
  Impl& d = *impl_;
  {
    MutexLock lock(&d.mu);
    while (!d.closing && d.jobs.size() >= kMaxQueued) d.cv.Wait();
    if (d.closing) return;  // unpublished: the next owner produces them
    d.jobs.push_back(Impl::Job{p, generation, checkpoint, std::move(changes), std::move(marker)});
  }
  d.cv.SignalAll();
}

Status ChangePublisher::ProduceNow(uint32_t p, uint64_t generation,
                                   std::span<const std::string_view> changes) {
  return impl_->ProduceAll(p, generation, changes);
}

void ChangePublisher::Stop() {
  Impl& d = *impl_;
  {
    MutexLock lock(&d.mu);
    if (d.closing) return;
    d.closing = true;
  }
  d.give_up_at.store(GiveUpAt(std::chrono::seconds(10)).time_since_epoch().count(),
                     std::memory_order_release);
  d.cv.SignalAll();
  if (d.thread.joinable()) d.thread.join();
}

uint64_t ChangePublisher::published() const {
  return impl_->published.load(std::memory_order_relaxed);
}
uint64_t ChangePublisher::fenced() const { return impl_->fenced.load(std::memory_order_relaxed); }

}  // namespace tierstream::kafka
