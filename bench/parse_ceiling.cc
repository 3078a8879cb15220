// parse_ceiling: the speed limit of the input format on one core. It only
// frames NDJSON lines (memchr) and extracts the fields tierstream needs with
// simdjson On-Demand — no validation beyond types, no state, no output — so
// tierstream's replay rate divided by this rate is its efficiency.
//
// Usage: parse_ceiling FILE  → one JSON line: lines, parsed, seconds, lines_per_s.
// `parsed` counts lines with every required field; the bench script checks
// it against tierstream's own count of valid lines before using the time.
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace {

using namespace simdjson;

// Extracts the fields of one event; true when the common ones are present.
bool Extract(ondemand::parser& parser, const char* p, size_t len, size_t capacity,
             uint64_t* checksum) {
  auto doc = parser.iterate(p, len, capacity);
  if (doc.error()) return false;
  ondemand::object obj;
  if (doc.get_object().get(obj)) return false;
  std::string_view event_id, type, user_id, text_ts, order_id, referrer, channel, amount;
  int64_t ts = 0;
  bool has_ts = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    ondemand::value v = field.value();
    if (key == "event_id") {
      if (v.get_string().get(event_id)) return false;
    } else if (key == "type") {
      if (v.get_string().get(type)) return false;
    } else if (key == "user_id") {
      if (v.get_string().get(user_id)) return false;
    } else if (key == "ts") {
      if (v.type() == ondemand::json_type::string) {
        if (v.get_string().get(text_ts)) return false;
      } else if (v.get_int64().get(ts)) {
        return false;
      }
      has_ts = true;
    } else if (key == "order_id") {
      if (v.get_string().get(order_id)) return false;
    } else if (key == "referrer_id") {
      if (v.get_string().get(referrer)) return false;
    } else if (key == "channel") {
      if (v.get_string().get(channel)) return false;
    } else if (key == "amount") {
      amount = v.raw_json_token();
    }
  }
  if (event_id.empty() || type.empty() || user_id.empty() || !has_ts) return false;
  *checksum += event_id.size() + user_id.size() + type.size() + static_cast<uint64_t>(ts) +
               amount.size() + order_id.size() + referrer.size() + channel.size() + text_ts.size();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: parse_ceiling FILE\n");
    return 2;
  }
  padded_string data;
  if (padded_string::load(argv[1]).get(data)) {
    std::fprintf(stderr, "parse_ceiling: cannot read %s\n", argv[1]);
    return 2;
  }
  ondemand::parser parser;
  uint64_t lines = 0, parsed = 0, checksum = 0;
  const char* const begin = data.data();
  const char* const end = begin + data.size();
  const auto start = std::chrono::steady_clock::now();
  for (const char* p = begin; p < end;) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* line_end = nl == nullptr ? end : nl;
    const size_t len = static_cast<size_t>(line_end - p);
    if (len > 0) {
      ++lines;
      // The rest of the buffer is valid padding for this line.
      parsed += Extract(parser, p, len, static_cast<size_t>(end - p) + SIMDJSON_PADDING, &checksum);
    }
    p = line_end + 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "{\"lines\":%llu,\"parsed\":%llu,\"seconds\":%.3f,\"lines_per_s\":%.0f,\"checksum\":%llu}\n",
      static_cast<unsigned long long>(lines), static_cast<unsigned long long>(parsed), seconds,
      static_cast<double>(lines) / seconds, static_cast<unsigned long long>(checksum));
  return 0;
}
