#include "kafka/members.h"

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "common/json_writer.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_name.h"
#include "common/time.h"
#include "kafka/client.h"

namespace tierstream::kafka {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kInterval = std::chrono::seconds(1);
// Heard from within this long: live.
constexpr auto kLive = std::chrono::seconds(10);

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

std::string EncodeMember(const MemberInfo& m) {
  std::string out;
  JsonWriter jw(&out);
  jw.BeginObject().Key("instance").String(m.instance).Key("address").String(m.address);
  jw.Key("partitions").BeginArray();
  for (const auto& [p, generation] : m.partitions) {
    jw.BeginArray().Int(p).Int(static_cast<int64_t>(generation)).EndArray();
  }
  jw.EndArray().Key("watermark").Int(m.watermark).Key("at").Int(m.at_ms).EndObject();
  return out;
}

bool DecodeMember(std::string_view json, MemberInfo* m) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::object o;
  std::string_view instance, address;
  simdjson::dom::array partitions;
  if (parser.parse(padded).get(o) || o["instance"].get(instance) || o["address"].get(address) ||
      o["partitions"].get(partitions) || o["watermark"].get(m->watermark) ||
      o["at"].get(m->at_ms)) {
    return false;
  }
  m->instance = instance;
  m->address = address;
  m->partitions.clear();
  for (simdjson::dom::element e : partitions) {
    simdjson::dom::array pair;
    uint64_t p = 0, generation = 0;
    if (e.get(pair) || pair.size() != 2 || pair.at(0).get(p) || pair.at(1).get(generation) ||
        p > UINT32_MAX) {
      return false;
    }
    m->partitions.emplace_back(static_cast<uint32_t>(p), generation);
  }
  return true;
}

struct Members::Impl {
  KafkaOptions options;
  Own own;
  std::function<void(int64_t)> on_watermark;
  std::string topic;
  rd_kafka_t* producer = nullptr;
  rd_kafka_t* reader = nullptr;
  std::atomic<bool> stopping{false};
  std::thread thread;
  bool stopped = false;

  struct Heard {
    MemberInfo info;
    Clock::time_point when;
  };
  mutable Mutex mu;
  std::map<std::string, Heard> members ABSL_GUARDED_BY(mu);  // by instance, this one's too
  int64_t max_watermark = kNoTs;                             // the thread's: the largest reported

  ~Impl() {
    if (reader != nullptr) {
      rd_kafka_consumer_close(reader);
      rd_kafka_destroy(reader);
    }
    if (producer != nullptr) {
      CloseProducer(producer, 5'000);
    }
  }

  MemberInfo Self(bool leaving) const {
    MemberInfo m;
    m.instance = own.instance;
    m.address = own.address;
    if (!leaving) m.partitions = own.partitions();
    m.watermark = own.watermark();
    m.at_ms = WallMs();
    return m;
  }

  void Announce(bool leaving) {
    const std::string value = EncodeMember(Self(leaving));
    Status s = Produce(producer, topic, 0, own.instance, value, nullptr, stopping);
    if (!s.ok()) {
      Log(LogLevel::kWarning, "tierstream: kafka: announcing this member: %s",
          s.ToString().c_str());
    }
  }

  void Take(const rd_kafka_message_t* m) {
    MemberInfo info;
    if (m->payload == nullptr ||
        !DecodeMember(std::string_view(static_cast<const char*>(m->payload), m->len), &info)) {
      return;  // not a member record: passed over
    }
    // An old record (read from the topic's start) is no sign of life.
    if (WallMs() - info.at_ms >
        std::chrono::duration_cast<std::chrono::milliseconds>(kLive).count())
      return;
    const int64_t t = info.watermark;
    {
      MutexLock lock(&mu);
      auto it = members.find(info.instance);
      if (info.instance != own.instance &&
          (it == members.end() || Clock::now() - it->second.when > kLive)) {
        Log(LogLevel::kInfo, "tierstream: kafka: instance %s at %s is live", info.instance.c_str(),
            info.address.c_str());
      }
      std::string instance = info.instance;
      members[std::move(instance)] = Heard{std::move(info), Clock::now()};
    }
    if (t != kNoTs && t > max_watermark) {
      max_watermark = t;
      if (on_watermark) on_watermark(t);
    }
  }

  void Run() {
    auto next = Clock::now();
    while (!stopping.load(std::memory_order_acquire)) {
      if (Clock::now() >= next) {
        Announce(false);
        next = Clock::now() + kInterval;
      }
      rd_kafka_poll(producer, 0);
      rd_kafka_message_t* m = rd_kafka_consumer_poll(reader, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        Take(m);
      } else {
        Log(LogLevel::kWarning, "tierstream: kafka: reading %s: %s", topic.c_str(),
            rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
  }
};

Members::Members(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Members::~Members() { Stop(); }

Result<std::unique_ptr<Members>> Members::Start(const KafkaOptions& options, Own own,
                                                std::function<void(int64_t)> on_watermark) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->own = std::move(own);
  impl->on_watermark = std::move(on_watermark);
  impl->topic = InternalTopic(options, "members");
  auto conf = NewConf(options, {{"linger.ms", "0"}, {"client.id", "tierstream-members"}});
  if (!conf.ok()) return conf.status();
  auto producer = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!producer.ok()) return producer.status();
  impl->producer = *producer;
  conf = NewConf(options, {{"group.id", options.group + "-members"},
                           {"enable.auto.commit", "false"},
                           {"enable.auto.offset.store", "false"},
                           {"enable.partition.eof", "false"},
                           {"fetch.wait.max.ms", "50"},
                           {"client.id", "tierstream-members"}});
  if (!conf.ok()) return conf.status();
  auto reader = NewClient(RD_KAFKA_CONSUMER, *conf);
  if (!reader.ok()) return reader.status();
  impl->reader = *reader;
  rd_kafka_poll_set_consumer(impl->reader);
  // From the end, less a minute of records: who announced lately.
  PartitionList list;
  list.Add(impl->topic, 0, RD_KAFKA_OFFSET_TAIL(600));
  if (rd_kafka_resp_err_t e = rd_kafka_assign(impl->reader, list.list)) {
    return Status::Unavailable("kafka: reading " + impl->topic + ": " + rd_kafka_err2str(e));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    NameThisThread("kafka-members");
    raw->Run();
  });
  return std::unique_ptr<Members>(new Members(std::move(impl)));
}

void Members::Stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  d.stopping.store(true, std::memory_order_release);
  if (d.thread.joinable()) d.thread.join();
  d.Announce(true);  // the others forget its partitions at once
}

std::vector<MemberInfo> Members::Peers() const {
  const Impl& d = *impl_;
  std::vector<MemberInfo> peers;
  const auto now = Clock::now();
  MutexLock lock(&d.mu);
  for (const auto& [instance, heard] : d.members) {
    if (instance == d.own.instance || now - heard.when > kLive) continue;
    peers.push_back(heard.info);
  }
  return peers;
}

std::string Members::OwnerOf(uint32_t partition) const {
  const Impl& d = *impl_;
  const auto now = Clock::now();
  std::string address;
  uint64_t newest = 0;
  MutexLock lock(&d.mu);
  for (const auto& [instance, heard] : d.members) {
    if (now - heard.when > kLive) continue;
    for (const auto& [p, generation] : heard.info.partitions) {
      if (p == partition && generation > newest) {
        newest = generation;
        address = heard.info.address;
      }
    }
  }
  return address;
}

}  // namespace tierstream::kafka
