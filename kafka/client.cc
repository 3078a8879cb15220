#include "kafka/client.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "kafka/kafka_ingest.h"

namespace tierstream::kafka {

namespace {

void LogFromKafka(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  (void)rk;
  // --kafka-config applies to every client: a consumer's property is no
  // error for the producer.
  if (std::strcmp(facility, "CONFWARN") == 0 && std::strstr(message, "is a consumer property")) {
    return;
  }
  // syslog levels: 0-3 errors, 4 warnings, the rest informational. Group
  // offset commits are advisory (a shard's own position is the truth): one
  // refused during a rebalance is no warning.
  const LogLevel l = std::strcmp(facility, "COMMITFAIL") == 0 ? LogLevel::kInfo
                     : level <= 3                             ? LogLevel::kError
                     : level == 4                             ? LogLevel::kWarning
                                                              : LogLevel::kInfo;
  Log(l, "tierstream: kafka: %s: %s", facility, message);
}

}  // namespace

Result<rd_kafka_conf_t*> NewConf(const KafkaOptions& options,
                                 std::initializer_list<std::pair<const char*, std::string>> own) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& key, const std::string& value) -> Status {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument("kafka config " + key + "=" + value + ": " + err);
    }
    return Status::Ok();
  };
  Status s = set("bootstrap.servers", options.bootstrap);
  for (const auto& [key, value] : own) {
    if (s.ok()) s = set(key, value);
  }
  for (const auto& [key, value] : options.client_config) {
    if (s.ok()) s = set(key, value);
  }
  if (!s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  rd_kafka_conf_set_log_cb(conf, LogFromKafka);
  return conf;
}

Result<rd_kafka_t*> NewClient(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);  // takes conf on success
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("kafka: ") + err);
  }
  return rk;
}

namespace {

using SteadyClock = std::chrono::steady_clock;

// The steady clock's time_since_epoch count of the shutdown deadline; 0
// while not shutting down.
std::atomic<SteadyClock::rep> shutdown_deadline{0};

}  // namespace

void StartShutdown(std::chrono::milliseconds budget) {
  SteadyClock::rep unset = 0;
  shutdown_deadline.compare_exchange_strong(
      unset, (SteadyClock::now() + budget).time_since_epoch().count());
}

SteadyClock::time_point GiveUpAt(std::chrono::milliseconds own) {
  auto at = SteadyClock::now() + own;
  if (const SteadyClock::rep deadline = shutdown_deadline.load(); deadline != 0) {
    at = std::min(at, SteadyClock::time_point(SteadyClock::duration(deadline)));
  }
  return at;
}

rd_kafka_resp_err_t FlushForShutdown(rd_kafka_t* producer, int timeout_ms) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(
      GiveUpAt(std::chrono::milliseconds(timeout_ms)) - SteadyClock::now());
  return rd_kafka_flush(producer, static_cast<int>(std::max<int64_t>(left.count(), 0)));
}

void CloseProducer(rd_kafka_t* producer, int flush_timeout_ms) {
  if (producer == nullptr) return;
  FlushForShutdown(producer, flush_timeout_ms);
  if (rd_kafka_outq_len(producer) > 0) {
    rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    // The purged messages' reports are queued by then: serve them.
    for (int i = 0; i < 100 && rd_kafka_outq_len(producer) > 0; ++i) rd_kafka_poll(producer, 10);
  }
  rd_kafka_destroy(producer);
}

void LogError(rd_kafka_error_t* e, const char* what) {
  if (e == nullptr) return;
  Log(LogLevel::kError, "tierstream: kafka: %s: %s", what, rd_kafka_error_string(e));
  rd_kafka_error_destroy(e);
}

Status Produce(rd_kafka_t* producer, const std::string& topic, int32_t partition,
               std::string_view key, std::string_view value, void* opaque,
               const std::atomic<bool>& stopping) {
  for (;;) {
    rd_kafka_vu_t vus[6];
    size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[n++].u.cstr = topic.c_str();
    vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vus[n++].u.i32 = partition;
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = const_cast<char*>(value.data());
    vus[n++].u.mem.size = value.size();
    if (!key.empty()) {
      vus[n].vtype = RD_KAFKA_VTYPE_KEY;
      vus[n].u.mem.ptr = const_cast<char*>(key.data());
      vus[n++].u.mem.size = key.size();
    }
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i32 = RD_KAFKA_MSG_F_COPY;
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[n++].u.ptr = opaque;
    rd_kafka_error_t* error = rd_kafka_produceva(producer, vus, n);
    const rd_kafka_resp_err_t err =
        error == nullptr ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_error_code(error);
    if (error != nullptr) rd_kafka_error_destroy(error);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || stopping.load()) {
      return Status::Unavailable("producing to " + topic + ": " + rd_kafka_err2str(err));
    }
    rd_kafka_poll(producer, 10);
  }
}

}  // namespace tierstream::kafka
