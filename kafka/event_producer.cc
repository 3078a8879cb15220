#include "kafka/event_producer.h"

#include <array>
#include <atomic>
#include <thread>
#include <utility>

#include "common/arena.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_name.h"
#include "kafka/client.h"

namespace tierstream::kafka {

namespace {

constexpr size_t kMaxErrors = 100;

// One body's records in flight: freed by its last delivery report.
struct Request {
  std::atomic<uint64_t> outstanding{0};
  std::atomic<uint64_t> failed{0};
  pipeline::BatchOutcome outcome;  // written before the first record goes, read by the last report
  uint64_t produced = 0;           // records (rejected lines too)
  std::function<void(pipeline::BatchOutcome, uint64_t produced)> done;
  std::string first_failure;  // under failure_mu
  Mutex failure_mu;

  // One record settled; the last one answers and frees the request.
  void Settle(bool ok, const char* error) {
    if (!ok) {
      failed.fetch_add(1, std::memory_order_relaxed);
      MutexLock lock(&failure_mu);
      if (first_failure.empty()) first_failure = error;
    }
    if (outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    Finish();
  }

  void Finish() {
    const uint64_t lost = failed.load();
    if (lost > 0) {
      produced -= lost;
      MutexLock lock(&failure_mu);
      outcome.status =
          Status::Unavailable(std::to_string(lost) + " records were not acknowledged by Kafka (" +
                              first_failure + "); send them again");
    }
    auto finish = std::move(done);
    pipeline::BatchOutcome o = std::move(outcome);
    const uint64_t n = produced;
    delete this;
    finish(std::move(o), n);
  }
};

// The lines to produce, in order: each valid line keyed by its user, each
// rejected one unkeyed (its partition's owner counts it as rejected, as it
// would had a producer sent it to the topic directly).
class Collector final : public ingest::DecodeSink {
 public:
  struct Line {
    uint64_t line;
    std::string user_id;  // empty: rejected
  };
  void OnEvent(const ingest::Event& e) override {
    lines.push_back({event_line(), std::string(e.user_id)});
  }
  void OnReject(uint64_t line, std::string_view reason, std::string_view) override {
    lines.push_back({line, std::string()});
    ++rejected;
    ++rejected_by_reason[static_cast<size_t>(ingest::ClassifyReject(reason))];
    if (errors.size() < kMaxErrors) errors.push_back({line, std::string(reason)});
  }
  std::vector<Line> lines;
  std::vector<ingest::LineError> errors;
  uint64_t rejected = 0;
  std::array<uint64_t, ingest::kRejectReasonCount> rejected_by_reason{};
};

}  // namespace

std::string ProduceSummary::ToJson() const {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  if (!status.ok()) w.Key("error").String(status.message());
  w.Key("produced").Int(static_cast<int64_t>(produced));
  w.Key("rejected").Int(static_cast<int64_t>(rejected));
  w.Key("errors").BeginArray();
  for (const ingest::LineError& e : errors) {
    w.BeginObject().Key("line").Int(static_cast<int64_t>(e.line)).Key("error").String(e.error);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return out;
}

struct EventProducer::Impl {
  KafkaOptions options;
  rd_kafka_t* producer = nullptr;
  std::atomic<bool> stopping{false};
  std::thread thread;

  ~Impl() {
    stopping.store(true);
    if (thread.joinable()) thread.join();
    if (producer != nullptr) {
      CloseProducer(producer, 10'000);
    }
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    auto* request = static_cast<Request*>(m->_private);
    if (request == nullptr) return;
    request->Settle(m->err == RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(m->err));
  }

  void Run() {
    while (!stopping.load(std::memory_order_acquire)) rd_kafka_poll(producer, 100);
  }
};

EventProducer::EventProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventProducer::~EventProducer() = default;

Result<std::unique_ptr<EventProducer>> EventProducer::Start(const KafkaOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  auto conf = NewConf(options, {{"enable.idempotence", "true"},
                                {"acks", "all"},
                                {"linger.ms", "5"},
                                {"partitioner", "murmur2_random"},
                                {"client.id", "tierstream-events"}});
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(*conf, Impl::OnDelivery);
  auto producer = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!producer.ok()) return producer.status();
  impl->producer = *producer;
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    NameThisThread("kafka-produce");
    raw->Run();
  });
  return std::unique_ptr<EventProducer>(new EventProducer(std::move(impl)));
}

void EventProducer::Produce(const ingest::PaddedBuffer& body,
                            std::function<void(ProduceSummary)> done) {
  Send(body.view(), 1, [done = std::move(done)](pipeline::BatchOutcome o, uint64_t produced) {
    ProduceSummary summary;
    summary.produced = produced;
    summary.rejected = o.rejected;
    summary.errors = std::move(o.errors);
    summary.status = std::move(o.status);
    done(std::move(summary));
  });
}

void EventProducer::ProduceLines(std::string_view lines, uint64_t first_line,
                                 std::function<void(pipeline::BatchOutcome)> done) {
  Send(lines, first_line,
       [done = std::move(done)](pipeline::BatchOutcome o, uint64_t) { done(std::move(o)); });
}

void EventProducer::Send(std::string_view text, uint64_t first_line,
                         std::function<void(pipeline::BatchOutcome, uint64_t)> done) {
  Impl& d = *impl_;
  Collector collector;
  {
    ingest::Decoder decoder;
    Arena arena;
    decoder.DecodeLines(text, first_line, &arena, &collector);
  }
  auto* request = new Request;
  request->done = std::move(done);
  request->outcome.accepted = collector.lines.size() - collector.rejected;
  request->outcome.rejected = collector.rejected;
  request->outcome.rejected_by_reason = collector.rejected_by_reason;
  request->outcome.errors = std::move(collector.errors);
  // One more than the records: the last settle happens after all went.
  request->outstanding.store(collector.lines.size() + 1);
  request->produced = collector.lines.size();
  // Each line's text, by line number (blank lines count).
  size_t at = 0;
  uint64_t line = first_line;
  for (const Collector::Line& v : collector.lines) {
    while (line < v.line) {
      const size_t nl = text.find('\n', at);
      at = nl == std::string_view::npos ? text.size() : nl + 1;
      ++line;
    }
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view record = text.substr(at, end - at);
    if (!record.empty() && record.back() == '\r') record.remove_suffix(1);
    Status s = kafka::Produce(d.producer, d.options.topic, RD_KAFKA_PARTITION_UA, v.user_id, record,
                              request, d.stopping);
    if (!s.ok()) request->Settle(false, s.ToString().c_str());
  }
  request->Settle(true, "");
}

}  // namespace tierstream::kafka
