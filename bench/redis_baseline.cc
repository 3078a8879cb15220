// redis_baseline: the "Redis + Lua" baseline of the benchmark suite (issue 4)
// — SPEC §2–§5 as a Redis 7 function library (bench/redis/tierstream.lua),
// fed by this pipelined hiredis client, as many teams would build it instead
// of tierstream.
//
//   redis_baseline --port P [--host H] [--tz +08:00] [--batch 500]
//                  [--inflight 16] [--lua FILE] [--flush] [--check | --check-only]
//                  FILE.ndjson
//
// Decodes FILE with tierstream's own decoder (so amounts become fen exactly
// as tierstream converts them), loads the library (FUNCTION LOAD REPLACE),
// sends every decoded event in FCALL ts_batch calls of --batch events with
// up to --inflight calls in flight, and prints one JSON line:
//   {"events":N,"seconds":S,"events_per_s":X,"users":U,...}
// `seconds` covers the feed only (first call sent to last reply received);
// decoding the file beforehand is reported apart as decode_seconds.
// Rejected lines are counted by the client and added to Redis's
// events_rejected, so the check compares that counter too.
//
// --check then compares every profile and the KPIs served by Redis with
// verify::BatchEvaluator fed the same decoded events, printing the first
// differences; exit 1 if any. --check-only compares without feeding (e.g.
// after restarting Redis from its AOF). Exit 2 on usage or Redis errors.
//
// Refuses a database that already holds tierstream state unless --flush.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/arena.h"
#include "common/json_writer.h"
#include "common/time.h"
#include "ingest/decoder.h"
#include "ingest/event.h"
#include "verify/batch_eval.h"
#include "verify/diff.h"

#ifndef TIERSTREAM_REDIS_LUA_DEFAULT
#define TIERSTREAM_REDIS_LUA_DEFAULT "bench/redis/tierstream.lua"
#endif

namespace tierstream::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string tz = "+08:00";
  size_t batch = 500;
  size_t inflight = 16;
  std::string lua = TIERSTREAM_REDIS_LUA_DEFAULT;
  bool flush = false;
  bool check = false;
  bool feed = true;  // false with --check-only
  size_t max_listed = 20;
  std::string file;
};

constexpr const char* kUsage =
    "usage: redis_baseline --port P [--host H] [--tz +08:00] [--batch 500] [--inflight 16]\n"
    "                      [--lua FILE] [--flush] [--check | --check-only] [--max-listed 20]\n"
    "                      FILE.ndjson\n";

bool ParseSize(const char* text, size_t* out) {
  const char* end = text + std::strlen(text);
  auto [p, ec] = std::from_chars(text, end, *out);
  return ec == std::errc() && p == end && *out > 0;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    size_t n = 0;
    if (a == "--port" && has_value && ParseSize(argv[i + 1], &n) && n < 65536) {
      o->port = static_cast<int>(n);
      ++i;
    } else if (a == "--host" && has_value) {
      o->host = argv[++i];
    } else if (a == "--tz" && has_value) {
      o->tz = argv[++i];
    } else if (a == "--batch" && has_value && ParseSize(argv[i + 1], &o->batch)) {
      ++i;
    } else if (a == "--inflight" && has_value && ParseSize(argv[i + 1], &o->inflight)) {
      ++i;
    } else if (a == "--max-listed" && has_value && ParseSize(argv[i + 1], &o->max_listed)) {
      ++i;
    } else if (a == "--lua" && has_value) {
      o->lua = argv[++i];
    } else if (a == "--flush") {
      o->flush = true;
    } else if (a == "--check") {
      o->check = true;
    } else if (a == "--check-only") {
      o->check = true;
      o->feed = false;
    } else if (!a.empty() && a[0] != '-' && o->file.empty()) {
      o->file = std::string(a);
    } else {
      std::fprintf(stderr, "redis_baseline: bad argument %s\n%s", argv[i], kUsage);
      return false;
    }
  }
  if (o->port == 0 || o->file.empty()) {
    std::fputs(kUsage, stderr);
    return false;
  }
  return true;
}

bool ReadFile(const std::string& path, ingest::PaddedBuffer* buf) {
  std::FILE* in = std::fopen(path.c_str(), "rb");
  if (in == nullptr) return false;
  std::string chunk(1 << 20, '\0');
  size_t n = 0;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), in)) > 0) {
    buf->Append(std::string_view(chunk.data(), n));
  }
  const bool ok = std::ferror(in) == 0;
  std::fclose(in);
  return ok;
}

// Keeps every decoded event; the strings live in the decoder's arena.
class CollectSink final : public ingest::DecodeSink {
 public:
  void OnEvent(const ingest::Event& e) override { events.push_back(e); }
  void OnReject(uint64_t, std::string_view, std::string_view) override { ++rejected; }

  std::vector<ingest::Event> events;
  int64_t rejected = 0;
};

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// One hiredis connection, blocking, with pipelining: Append() queues a
// command, Next() sends what is queued and reads the oldest reply. A failed
// call ends the program (exit 2): a benchmark with a failed call has no
// meaning. Confined to one thread.
class Redis {
 public:
  // Takes ownership of `c`, a connected context.
  explicit Redis(redisContext* c) : c_(c) {}
  static std::unique_ptr<Redis> Connect(const std::string& host, int port) {
    redisContext* c = redisConnect(host.c_str(), port);
    if (c == nullptr || c->err != 0) {
      std::fprintf(stderr, "redis_baseline: cannot connect to %s:%d: %s\n", host.c_str(), port,
                   c != nullptr ? c->errstr : "out of memory");
      if (c != nullptr) redisFree(c);
      return nullptr;
    }
    return std::make_unique<Redis>(c);
  }
  ~Redis() { redisFree(c_); }
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;

  // Non-const: hiredis 0.14 takes `const char**`.
  void Append(std::vector<const char*>& argv, const std::vector<size_t>& lens) {
    if (redisAppendCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      Fail("append");
    }
  }
  void Append(std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (std::string_view a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    Append(argv, lens);
  }
  // The next reply, never an error reply.
  Reply Next(const char* what) {
    void* raw = nullptr;
    if (redisGetReply(c_, &raw) != REDIS_OK || raw == nullptr) Fail(what);
    Reply r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_ERROR) {
      std::fprintf(stderr, "redis_baseline: %s: %.*s\n", what, static_cast<int>(r->len), r->str);
      std::exit(2);
    }
    return r;
  }
  Reply Call(std::initializer_list<std::string_view> args, const char* what) {
    Append(args);
    return Next(what);
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    std::fprintf(stderr, "redis_baseline: %s: %s\n", what, c_->errstr);
    std::exit(2);
  }
  redisContext* c_;
};

constexpr const char* kTypeArg[] = {"0", "1", "2", "3", "4", "5", "6", "7"};

// Sends every event in FCALL ts_batch calls; returns {accepted, duplicates}.
std::pair<int64_t, int64_t> Feed(Redis& redis, const std::vector<ingest::Event>& events,
                                 int64_t rejected, const Options& o) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  // Number text of one batch; hiredis copies a command when it is appended.
  std::vector<char> digits(o.batch * 2 * 24 + 24);
  int64_t accepted = 0, duplicates = 0;
  size_t in_flight = 0;
  auto collect = [&] {
    Reply r = redis.Next("FCALL ts_batch");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      std::fprintf(stderr, "redis_baseline: ts_batch: unexpected reply\n");
      std::exit(2);
    }
    accepted += r->element[0]->integer;
    duplicates += r->element[1]->integer;
    --in_flight;
  };
  for (size_t first = 0; first < events.size(); first += o.batch) {
    argv.clear();
    lens.clear();
    char* next = digits.data();
    auto number = [&](int64_t v) {
      auto [end, ec] = std::to_chars(next, next + 24, v);
      argv.push_back(next);
      lens.push_back(static_cast<size_t>(end - next));
      next = end;
    };
    auto text = [&](std::string_view s) {
      argv.push_back(s.data() != nullptr ? s.data() : "");
      lens.push_back(s.size());
    };
    text("FCALL");
    text("ts_batch");
    text("0" /*numkeys*/);
    number(first == 0 ? rejected : 0);
    const size_t last = std::min(events.size(), first + o.batch);
    for (size_t i = first; i < last; ++i) {
      const ingest::Event& e = events[i];
      text(e.event_id);
      text(e.user_id);
      text(kTypeArg[static_cast<int>(e.type)]);
      number(e.ts_ms);
      number(e.amount_fen);
      if (e.type == ingest::EventType::kJoin) {
        text(e.referrer_id);
      } else {
        text(e.community ? "1" : "");
      }
    }
    redis.Append(argv, lens);
    if (++in_flight >= o.inflight) collect();
  }
  while (in_flight > 0) collect();
  return {accepted, duplicates};
}

int64_t Int(const redisReply* r) { return r->type == REDIS_REPLY_INTEGER ? r->integer : INT64_MIN; }
std::string_view Str(const redisReply* r) {
  return r->type == REDIS_REPLY_STRING ? std::string_view(r->str, r->len) : std::string_view();
}

// The ts_profile reply as tierstream's GET /v1/users/{id} renders it.
std::string ProfileJson(std::string_view user_id, const redisReply* r) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("user_id").String(user_id);
  w.Key("as_of").Int(Int(r->element[0]));
  w.Key("member").Bool(Int(r->element[1]) == 1);
  w.Key("joined_at").Int(Int(r->element[2]));
  w.Key("last_active");
  if (r->element[3]->type == REDIS_REPLY_NIL) {
    w.Null();
  } else {
    w.Int(Int(r->element[3]));
  }
  w.Key("interactions_7d").Int(Int(r->element[4]));
  w.Key("interactions_30d").Int(Int(r->element[5]));
  w.Key("orders_total").Int(Int(r->element[6]));
  w.Key("orders_30d").Int(Int(r->element[7]));
  w.Key("repeat_orders").Int(Int(r->element[8]));
  w.Key("spend_30d").Yuan(Int(r->element[9]));
  w.Key("spend_total").Yuan(Int(r->element[10]));
  w.Key("points").Int(Int(r->element[11]));
  w.Key("referrals").Int(Int(r->element[12]));
  w.Key("tier").String(Str(r->element[13]));
  w.EndObject();
  return out;
}

double Ratio(double num, int64_t den) { return den == 0 ? 0.0 : num / static_cast<double>(den); }

// The ts_kpis reply as tierstream's GET /v1/kpis renders it; the ratios are
// derived here (a Lua number in a Redis reply is truncated to an integer).
std::string KpisJson(const redisReply* r) {
  std::vector<int64_t> v;
  for (size_t i = 0; i < r->elements; ++i) v.push_back(Int(r->element[i]));
  enum {
    kAsOf,
    kUsers,
    kMembers,
    kTier0,
    kMau = kTier0 + 6,
    kDau,
    kNew30,
    kOrders30,
    kCommunity30,
    kGmv30,
    kRefunds30,
    kBuyers,
    kRepeatBuyers,
    kJoins30,
    kJoinsPrev30,
    kAccepted,
    kDuplicate,
    kRejected,
    kCount
  };
  if (v.size() != kCount) return "{}";
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("as_of");
  if (r->element[kAsOf]->type == REDIS_REPLY_NIL) {
    w.Null();
  } else {
    w.Int(v[kAsOf]);
  }
  w.Key("users_total").Int(v[kUsers]);
  w.Key("members").Int(v[kMembers]);
  w.Key("tiers").BeginObject();
  const char* tiers[] = {"left", "high_value", "new", "active", "dormant", "regular"};
  for (size_t i = 0; i < 6; ++i) w.Key(tiers[i]).Int(v[kTier0 + i]);
  w.EndObject();
  w.Key("mau").Int(v[kMau]);
  w.Key("dau").Int(v[kDau]);
  w.Key("monthly_active_rate").Double(Ratio(static_cast<double>(v[kMau]), v[kMembers]));
  w.Key("new_members_30d").Int(v[kNew30]);
  w.Key("orders_30d").Int(v[kOrders30]);
  w.Key("community_orders_30d").Int(v[kCommunity30]);
  w.Key("community_order_share").Double(Ratio(static_cast<double>(v[kCommunity30]), v[kOrders30]));
  w.Key("gmv_30d").Yuan(v[kGmv30]);
  w.Key("refunds_30d").Yuan(v[kRefunds30]);
  w.Key("net_gmv_30d").Yuan(v[kGmv30] - v[kRefunds30]);
  w.Key("aov_30d").Double(Ratio(static_cast<double>(v[kGmv30]) / 100.0, v[kOrders30]));
  w.Key("buyers_total").Int(v[kBuyers]);
  w.Key("repeat_buyers_total").Int(v[kRepeatBuyers]);
  w.Key("repurchase_rate").Double(Ratio(static_cast<double>(v[kRepeatBuyers]), v[kBuyers]));
  w.Key("referred_joins_30d").Int(v[kJoins30]);
  w.Key("referred_joins_prev_30d").Int(v[kJoinsPrev30]);
  w.Key("referral_growth");
  if (v[kJoinsPrev30] == 0) {
    w.Null();
  } else {
    w.Double(static_cast<double>(v[kJoins30] - v[kJoinsPrev30]) /
             static_cast<double>(v[kJoinsPrev30]));
  }
  w.Key("events_accepted").Int(v[kAccepted]);
  w.Key("events_duplicate").Int(v[kDuplicate]);
  w.Key("events_rejected").Int(v[kRejected]);
  w.EndObject();
  return out;
}

// Compares what Redis serves with the batch evaluator; returns the number of
// differences and prints the first o.max_listed.
size_t Check(Redis& redis, const std::vector<ingest::Event>& events, int64_t rejected,
             int64_t offset_ms, const Options& o) {
  verify::BatchEvaluator eval(offset_ms, verify::Thresholds{});
  for (const ingest::Event& e : events) eval.Add(e);
  eval.AddRejected(rejected);
  const auto profiles = eval.Profiles();
  const verify::Kpis kpis = eval.ComputeKpis();

  size_t differences = 0;
  auto report = [&](const std::string& line) {
    if (++differences <= o.max_listed) std::printf("diff %s\n", line.c_str());
  };
  std::vector<const verify::Profile*> pending;  // in the order of the calls in flight
  size_t next = 0;
  auto collect = [&] {
    const verify::Profile& want = *pending[next++];
    Reply r = redis.Next("FCALL_RO ts_profile");
    if (r->type == REDIS_REPLY_NIL) {
      report(want.user_id + ": missing from redis");
      return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 15) {
      report(want.user_id + ": unexpected reply");
      return;
    }
    for (const std::string& d : verify::DiffProfile(ProfileJson(want.user_id, r.get()), want)) {
      report(d);
    }
    // The incremental tier counts hold the stored tier: it must be the one
    // evaluated as of T.
    if (Str(r->element[14]) != Str(r->element[13])) {
      report(want.user_id + ".stored_tier: got " + std::string(Str(r->element[14])) + " want " +
             std::string(Str(r->element[13])));
    }
  };
  for (const auto& [id, want] : profiles) {
    redis.Append({"FCALL_RO", "ts_profile", "0", id});
    pending.push_back(&want);
    if (pending.size() - next >= 256) collect();
  }
  while (next < pending.size()) collect();

  Reply k = redis.Call({"FCALL_RO", "ts_kpis", "0"}, "FCALL_RO ts_kpis");
  for (const std::string& d : verify::DiffKpis(KpisJson(k.get()), kpis, true /*counters*/)) {
    report("kpi " + d);
  }
  if (differences == 0) {
    std::printf("check: 0 differences over %zu users\n", profiles.size());
  } else {
    std::printf("check: %zu differences over %zu users\n", differences, profiles.size());
  }
  return differences;
}

int Run(const Options& o) {
  const std::optional<int64_t> offset_ms = ParseUtcOffset(o.tz);
  if (!offset_ms) {
    std::fprintf(stderr, "redis_baseline: --tz: expected an offset like +08:00\n");
    return 2;
  }
  ingest::PaddedBuffer script;
  if (!ReadFile(o.lua, &script)) {
    std::fprintf(stderr, "redis_baseline: cannot read %s\n", o.lua.c_str());
    return 2;
  }

  const auto decode_start = Clock::now();
  ingest::PaddedBuffer input;
  if (!ReadFile(o.file, &input)) {
    std::fprintf(stderr, "redis_baseline: cannot read %s\n", o.file.c_str());
    return 2;
  }
  Arena arena;
  CollectSink sink;
  ingest::Decoder decoder;
  decoder.DecodeLines(input.view(), 1, &arena, &sink);
  const double decode_seconds = std::chrono::duration<double>(Clock::now() - decode_start).count();

  std::unique_ptr<Redis> redis = Redis::Connect(o.host, o.port);
  if (redis == nullptr) return 2;
  redis->Call({"FUNCTION", "LOAD", "REPLACE", script.view()}, "FUNCTION LOAD");
  if (o.feed) {
    if (o.flush) {
      redis->Call({"FLUSHDB"}, "FLUSHDB");
    } else if (redis->Call({"EXISTS", "ts:meta"}, "EXISTS")->integer != 0) {
      std::fprintf(stderr,
                   "redis_baseline: the database already holds tierstream state "
                   "(--flush to drop it)\n");
      return 2;
    }
  }
  const verify::Thresholds t;  // SPEC §3 defaults, as the evaluator's
  redis->Call({"FCALL", "ts_config", "0", std::to_string(*offset_ms),
               std::to_string(t.high_value_spend_fen), std::to_string(t.high_value_repeat_orders),
               std::to_string(t.new_days), std::to_string(t.active_interactions_7d)},
              "FCALL ts_config");

  if (o.feed) {
    const auto start = Clock::now();
    const auto [accepted, duplicates] = Feed(*redis, sink.events, sink.rejected, o);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    Reply kpis = redis->Call({"FCALL_RO", "ts_kpis", "0"}, "FCALL_RO ts_kpis");
    const int64_t users = kpis->elements > 1 ? Int(kpis->element[1]) : -1;
    std::printf(
        "{\"events\":%zu,\"seconds\":%.3f,\"events_per_s\":%.0f,\"users\":%lld,"
        "\"accepted\":%lld,\"duplicates\":%lld,\"rejected\":%lld,\"batch\":%zu,"
        "\"inflight\":%zu,\"decode_seconds\":%.3f}\n",
        sink.events.size(), seconds,
        seconds > 0 ? static_cast<double>(sink.events.size()) / seconds : 0.0,
        static_cast<long long>(users), static_cast<long long>(accepted),
        static_cast<long long>(duplicates), static_cast<long long>(sink.rejected), o.batch,
        o.inflight, decode_seconds);
    std::fflush(stdout);
  }
  if (o.check && Check(*redis, sink.events, sink.rejected, *offset_ms, o) != 0) return 1;
  return 0;
}

}  // namespace
}  // namespace tierstream::bench

int main(int argc, char** argv) {
  tierstream::bench::Options options;
  if (!tierstream::bench::ParseArgs(argc, argv, &options)) return 2;
  return tierstream::bench::Run(options);
}
