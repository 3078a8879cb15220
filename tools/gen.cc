// Generates a synthetic social-commerce event stream (gen).
#include "tools/gen.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "common/time.h"

namespace tierstream::tools {

Status ValidateGenOptions(const GenOptions& options) {
  auto fmt = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  const std::pair<const char*, double> rates[] = {{"--duplicate-rate", options.duplicate_rate},
                                                  {"--disorder-rate", options.disorder_rate},
                                                  {"--invalid-rate", options.invalid_rate}};
  for (const auto& [flag, rate] : rates) {
    // Written so that NaN fails too.
    if (!(rate >= 0.0 && rate <= 1.0)) {
      return Status::InvalidArgument(std::string(flag) + ": must be in 0..1, got " + fmt(rate));
    }
  }
  if (options.users == 0) return Status::InvalidArgument("--users: must be at least 1, got 0");
  if (!TsInRange(options.end_ms)) {
    return Status::InvalidArgument("--end-ms: must be in [2000-01-01, 2100-01-01) (" +
                                   std::to_string(kMinTsMs) + ".." + std::to_string(kMaxTsMs - 1) +
                                   "), got " + std::to_string(options.end_ms));
  }
  if (options.days < 1) {
    return Status::InvalidArgument("--days: must be at least 1, got " +
                                   std::to_string(options.days));
  }
  // Joins of members who were there before the span go up to 180 days
  // further back: all of it must stay after 2000-01-01, the earliest valid ts.
  const int64_t max_days = (options.end_ms - kMinTsMs) / kMsPerDay - 181;
  if (options.days > max_days) {
    return Status::InvalidArgument("--days: at most " + std::to_string(max_days) +
                                   " (events before 2000-01-01 are invalid), got " +
                                   std::to_string(options.days));
  }
  return Status::Ok();
}

namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kPlus8Ms = 8 * 3'600'000;

// xoshiro256**: fast, good quality, deterministic across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      s = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

struct UserSim {
  uint8_t state = 0;  // 0 never joined, 1 member, 2 left
  uint32_t last_order_fen = 0;
  uint64_t last_order_event = 0;  // 0: no order yet
};

class Writer {
 public:
  void Raw(std::string_view s) { line_.append(s); }
  void Int(int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    line_.append(buf, r.ptr);
  }
  void Pad(int64_t v, int width) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    for (int n = static_cast<int>(r.ptr - buf); n < width; ++n) line_.push_back('0');
    line_.append(buf, r.ptr);
  }
  std::string& line() { return line_; }

 private:
  std::string line_;
};

// Civil date of a day number (Howard Hinnant's civil_from_days).
void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

void WriteRfc3339(Writer* w, int64_t ts, bool utc) {
  const int64_t local = ts + (utc ? 0 : kPlus8Ms);
  int64_t days = local / kDayMs;
  int64_t ms_of_day = local % kDayMs;
  if (ms_of_day < 0) {
    ms_of_day += kDayMs;
    --days;
  }
  int64_t y;
  int m, d;
  CivilFromDays(days, &y, &m, &d);
  w->Raw("\"");
  w->Pad(y, 4);
  w->Raw("-");
  w->Pad(m, 2);
  w->Raw("-");
  w->Pad(d, 2);
  w->Raw("T");
  w->Pad(ms_of_day / 3'600'000, 2);
  w->Raw(":");
  w->Pad(ms_of_day / 60'000 % 60, 2);
  w->Raw(":");
  w->Pad(ms_of_day / 1000 % 60, 2);
  w->Raw(".");
  w->Pad(ms_of_day % 1000, 3);
  w->Raw(utc ? "Z\"" : "+08:00\"");
}

void WriteUser(Writer* w, uint64_t u) {
  w->Raw("\"u");
  w->Pad(static_cast<int64_t>(u), 7);
  w->Raw("\"");
}

void WriteAmount(Writer* w, uint32_t fen) {
  w->Int(fen / 100);
  if (fen % 100 != 0) {
    w->Raw(".");
    if (fen % 10 == 0) {
      w->Int(fen / 10 % 10);
    } else {
      w->Pad(fen % 100, 2);
    }
  }
}

constexpr const char* kTexts[] = {
    "大家好 👋",
    "这个多少钱?",
    "ok",
    "emoji 🎉🎉",
    "tab\\tand \\\"quote\\\" and \\\\ slash",
    "\\u4e2d\\u6587",
    "谢谢群主",
    "已下单",
    "line\\nbreak",
    "好评 👍",
};

const char* const kInvalid[] = {
    R"({"event_id":"bad-%","type":"message","user_id":"u1","ts":17639)",
    R"({"event_id":"bad-%","type":"message","ts":1763971200000})",
    R"({"event_id":"bad-%","type":"order","user_id":"u1","ts":1763971200000,"order_id":"o","amount":-5})",
    R"({"event_id":"bad-%","type":"poke","user_id":"u1","ts":1763971200000})",
    R"({"event_id":"bad-%","type":"reaction","user_id":"u1","ts":"yesterday"})",
    R"(not json at all)",
    R"([{"event_id":"bad-%","type":"share","user_id":"u1","ts":1763971200000}])",
};

}  // namespace

namespace {

bool GenerateMidnight(const GenOptions& options, std::FILE* out) {
  const uint64_t users = options.users == 0 ? 1 : options.users;
  const uint64_t events = options.events == 0 ? users : options.events;
  // The midnight that ends the stream's last day but one, in +08:00.
  constexpr int64_t kOffsetMs = 8 * 3600 * 1000;
  const int64_t midnight = (options.end_ms + kOffsetMs) / kDayMs * kDayMs - kOffsetMs;
  const int64_t join_day_start = midnight - 30 * kDayMs;
  Rng rng(options.seed);
  std::string chunk;
  // One line {"event_id":"<id_prefix><n>","type":"<type>","user_id":"m<user>","ts":<ts>}.
  auto emit = [&](const char* id_prefix, uint64_t n, const char* type, uint64_t user, int64_t ts) {
    char line[256];
    const int len =
        std::snprintf(line, sizeof line,
                      R"({"event_id":"%s%llu","type":"%s","user_id":"m%llu","ts":%lld})"
                      "\n",
                      id_prefix, static_cast<unsigned long long>(n), type,
                      static_cast<unsigned long long>(user), static_cast<long long>(ts));
    chunk.append(line, static_cast<size_t>(len));
    if (chunk.size() < (1 << 20)) return true;
    bool ok = std::fwrite(chunk.data(), 1, chunk.size(), out) == chunk.size();
    chunk.clear();
    return ok;
  };
  for (uint64_t i = 0; i < users; ++i) {
    const int64_t ts = join_day_start + static_cast<int64_t>(i * (kDayMs / 2) / users);
    if (!emit("mj", i, "join", i, ts)) return false;
  }
  const int64_t from = midnight - 30 * 60 * 1000;
  for (uint64_t k = 0; k < events; ++k) {
    const int64_t ts = from + static_cast<int64_t>(k * 3600 * 1000 / events);
    if (!emit("mm", k, "message", rng.Next() % users, ts)) return false;
  }
  return std::fwrite(chunk.data(), 1, chunk.size(), out) == chunk.size();
}

}  // namespace

bool GenerateStream(const GenOptions& options, std::FILE* out) {
  if (options.midnight) return GenerateMidnight(options, out);
  const uint64_t users = options.users == 0 ? 1 : options.users;
  const uint64_t total = options.events == 0 ? users * 10 : options.events;
  const int64_t span = static_cast<int64_t>(options.days > 0 ? options.days : 1) * kDayMs;
  const int64_t start = options.end_ms - span + 1;
  Rng rng(options.seed);
  std::vector<UserSim> sims(users);
  // A multiplier coprime with `users` scatters the heavy users over the id space.
  uint64_t mult = 2654435761ull % users;
  auto gcd = [](uint64_t a, uint64_t b) {
    while (b != 0) {
      uint64_t t = a % b;
      a = b;
      b = t;
    }
    return a;
  };
  while (users > 1 && (mult == 0 || gcd(mult, users) != 1)) ++mult;
  if (users == 1) mult = 1;

  // Duplicates are retries: they repeat one of the lines of the last few
  // hours of event time (well inside the duplicate horizon).
  const uint64_t lines_per_6h = total / (static_cast<uint64_t>(span / kDayMs) * 4 + 1);
  std::vector<std::string> recent(std::clamp<uint64_t>(lines_per_6h, 16, 4096));
  size_t recent_count = 0;
  std::string chunk;
  chunk.reserve(1 << 20);
  Writer w;
  std::string seed_tag = "g";
  seed_tag += std::to_string(options.seed);
  seed_tag += '-';

  for (uint64_t n = 0; n < total; ++n) {
    std::string& line = w.line();
    line.clear();
    const double r = rng.Uniform();
    if (r < options.duplicate_rate && recent_count > 0) {
      line = recent[rng.Below(recent_count < recent.size() ? recent_count : recent.size())];
    } else if (r < options.duplicate_rate + options.invalid_rate) {
      std::string tmpl = kInvalid[rng.Below(std::size(kInvalid))];
      size_t at = tmpl.find('%');
      if (at != std::string::npos) tmpl.replace(at, 1, std::to_string(n));
      line = tmpl;
    } else {
      // Time advances steadily; a share of events arrives late.
      int64_t ts = start + static_cast<int64_t>(static_cast<double>(span) *
                                                (static_cast<double>(n) + rng.Uniform()) /
                                                static_cast<double>(total));
      if (rng.Uniform() < options.disorder_rate) {
        ts -= static_cast<int64_t>(rng.Uniform() * 3.0 * static_cast<double>(kDayMs));
      }
      if (ts > options.end_ms) ts = options.end_ms;
      // Heavy-tailed activity: a few members produce most events.
      const auto rank =
          static_cast<uint64_t>(static_cast<double>(users) * std::pow(rng.Uniform(), 2.2));
      const uint64_t u = (std::min(rank, users - 1) * mult) % users;
      UserSim& sim = sims[u];

      w.Raw("{\"event_id\":\"");
      w.Raw(seed_tag);
      w.Int(static_cast<int64_t>(n));
      w.Raw("\",\"type\":\"");
      const char* type;
      double t = rng.Uniform();
      bool join = sim.state == 0 || (sim.state == 2 && t < 0.15);
      bool leave = !join && sim.state == 1 && t < 0.006;
      if (join) {
        type = "join";
      } else if (leave) {
        type = "leave";
      } else if (t < 0.45) {
        type = "message";
      } else if (t < 0.65) {
        type = "reaction";
      } else if (t < 0.75) {
        type = "checkin";
      } else if (t < 0.80) {
        type = "share";
      } else if (t < 0.95 || sim.last_order_event == 0) {
        type = "order";
      } else {
        type = "refund";
      }
      w.Raw(type);
      w.Raw("\",\"user_id\":");
      WriteUser(&w, u);
      w.Raw(",\"ts\":");
      if (sim.state == 0 && join && rng.Uniform() < 0.7) {
        // Most members joined before the span: their join arrives as history,
        // up to half a year back.
        ts = start - 1 - static_cast<int64_t>(rng.Uniform() * 180.0 * static_cast<double>(kDayMs));
      }
      double fmt = rng.Uniform();
      if (fmt < 0.10) {
        WriteRfc3339(&w, ts, false);
      } else if (fmt < 0.12) {
        WriteRfc3339(&w, ts, true);
      } else {
        w.Int(ts);
      }
      const std::string_view ty(type);
      if (ty == "join") {
        w.Raw(",\"group_id\":\"g");
        w.Int(static_cast<int64_t>(1 + rng.Below(50)));
        w.Raw("\"");
        if (rng.Uniform() < 0.15) {
          // Invite by an existing member (rarely by oneself).
          uint64_t ref = rng.Uniform() < 0.01 ? u : (rng.Below(users) * mult) % users;
          w.Raw(",\"referrer_id\":");
          WriteUser(&w, ref);
        }
        sim.state = 1;
      } else if (ty == "leave") {
        sim.state = 2;
      } else if (ty == "order") {
        const auto fen = static_cast<uint32_t>(100 + std::pow(rng.Uniform(), 3.0) * 199900.0);
        uint32_t shown = rng.Uniform() < 0.3 ? fen / 100 * 100 : fen;
        w.Raw(",\"order_id\":\"o-");
        w.Raw(seed_tag);
        w.Int(static_cast<int64_t>(n));
        w.Raw("\",\"amount\":");
        WriteAmount(&w, shown);
        double ch = rng.Uniform();
        if (ch < 0.45) {
          w.Raw(",\"channel\":\"community\"");
        } else if (ch < 0.8) {
          w.Raw(",\"channel\":\"other\"");
        }
        sim.last_order_fen = shown;
        sim.last_order_event = n + 1;
      } else if (ty == "refund") {
        w.Raw(",\"order_id\":\"o-");
        w.Raw(seed_tag);
        w.Int(static_cast<int64_t>(sim.last_order_event - 1));
        w.Raw("\",\"amount\":");
        WriteAmount(&w, static_cast<uint32_t>(static_cast<double>(sim.last_order_fen) *
                                              (0.2 + 0.8 * rng.Uniform())));
      } else {
        w.Raw(",\"group_id\":\"g");
        w.Int(static_cast<int64_t>(1 + rng.Below(50)));
        w.Raw("\"");
        if (ty == "message") {
          w.Raw(",\"text\":\"");
          w.Raw(kTexts[rng.Below(std::size(kTexts))]);
          w.Raw("\"");
        }
      }
      w.Raw("}");
      recent[recent_count % recent.size()] = line;
      ++recent_count;
    }
    chunk.append(line);
    chunk.push_back('\n');
    if (chunk.size() >= (1 << 20) - 4096) {
      if (std::fwrite(chunk.data(), 1, chunk.size(), out) != chunk.size()) return false;
      chunk.clear();
    }
  }
  return std::fwrite(chunk.data(), 1, chunk.size(), out) == chunk.size();
}

}  // namespace tierstream::tools
