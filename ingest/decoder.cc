// Frames NDJSON lines (and JSON array elements) and decodes each into an
// Event with simdjson On-Demand, naming the field of every rejected line.
#include "ingest/decoder.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "common/money.h"
#include "common/time.h"

namespace tierstream::ingest {

namespace od = simdjson::ondemand;

std::string_view EventTypeName(EventType t) {
  switch (t) {
    case EventType::kMessage:
      return "message";
    case EventType::kReaction:
      return "reaction";
    case EventType::kCheckin:
      return "checkin";
    case EventType::kShare:
      return "share";
    case EventType::kJoin:
      return "join";
    case EventType::kLeave:
      return "leave";
    case EventType::kOrder:
      return "order";
    case EventType::kRefund:
      return "refund";
    case EventType::kReferralCredit:
      return "referral_credit";
  }
  return "?";
}

namespace {

static_assert(kPadding >= simdjson::SIMDJSON_PADDING);

// Deeper values than this inside ignored fields are rejected: it bounds the
// validation recursion whatever the input.
constexpr int kMaxDepth = 64;
constexpr int64_t kMaxAmountYuan = 1'000'000'000;
constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxRawInLog = 512;

enum Field : uint32_t {
  kEventId = 1u << 0,
  kType = 1u << 1,
  kUserId = 1u << 2,
  kTs = 1u << 3,
  kGroupId = 1u << 4,
  kReferrerId = 1u << 5,
  kOrderId = 1u << 6,
  kAmount = 1u << 7,
  kChannel = 1u << 8,
  kUnknown = 0,
};

Field FieldOf(std::string_view key) {
  switch (key.size()) {
    case 2:
      return key == "ts" ? kTs : kUnknown;
    case 4:
      return key == "type" ? kType : kUnknown;
    case 6:
      return key == "amount" ? kAmount : kUnknown;
    case 7:
      if (key == "user_id") return kUserId;
      return key == "channel" ? kChannel : kUnknown;
    case 8:
      if (key == "event_id") return kEventId;
      if (key == "group_id") return kGroupId;
      return key == "order_id" ? kOrderId : kUnknown;
    case 11:
      return key == "referrer_id" ? kReferrerId : kUnknown;
    default:
      return kUnknown;
  }
}

bool TypeOf(std::string_view s, EventType* out) {
  static constexpr std::pair<std::string_view, EventType> kTypes[] = {
      {"message", EventType::kMessage}, {"reaction", EventType::kReaction},
      {"checkin", EventType::kCheckin}, {"share", EventType::kShare},
      {"join", EventType::kJoin},       {"leave", EventType::kLeave},
      {"order", EventType::kOrder},     {"refund", EventType::kRefund},
  };
  for (const auto& [name, type] : kTypes) {
    if (s == name) {
      *out = type;
      return true;
    }
  }
  return false;
}

std::string_view TrimJson(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool IsBlank(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    char c = p[i];
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

std::string JsonError(simdjson::error_code err) {
  return std::string("invalid JSON: ") + simdjson::error_message(err);
}

// Checks that an ignored value is well-formed JSON; On-Demand does not look
// at values nobody reads, and a line with a broken value must be rejected.
simdjson::error_code ValidateValue(od::value value, int depth) {
  if (depth > kMaxDepth) return simdjson::DEPTH_ERROR;
  od::json_type type;
  if (auto err = value.type().get(type)) return err;
  switch (type) {
    case od::json_type::object: {
      od::object obj;
      if (auto err = value.get_object().get(obj)) return err;
      for (auto field_result : obj) {
        od::field field;
        if (auto err = std::move(field_result).get(field)) return err;
        std::string_view key;
        if (auto err = field.unescaped_key().get(key)) return err;
        if (auto err = ValidateValue(field.value(), depth + 1)) return err;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::array: {
      od::array arr;
      if (auto err = value.get_array().get(arr)) return err;
      for (auto element_result : arr) {
        od::value element;
        if (auto err = std::move(element_result).get(element)) return err;
        if (auto err = ValidateValue(element, depth + 1)) return err;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view s;
      return value.get_string().get(s);
    }
    case od::json_type::number: {
      // Grammar only: a huge number in an ignored field is still JSON.
      int64_t ignored;
      DecimalError e = DecimalToFen(TrimJson(value.raw_json_token()), INT64_MAX / 1000, &ignored);
      return e == DecimalError::kSyntax ? simdjson::NUMBER_ERROR : simdjson::SUCCESS;
    }
    case od::json_type::boolean: {
      bool b;
      return value.get_bool().get(b);
    }
    case od::json_type::null: {
      bool is_null = false;
      if (auto err = value.is_null().get(is_null)) return err;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

}  // namespace

namespace {

// "1 day", "2 days", "36 h", "90 s", "1500 ms": the largest whole unit.
std::string FormatSpan(int64_t ms) {
  auto plural = [](int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
  };
  if (ms > 0 && ms % 86'400'000 == 0) return plural(ms / 86'400'000, "day");
  if (ms > 0 && ms % 3'600'000 == 0) return plural(ms / 3'600'000, "hour");
  if (ms > 0 && ms % 60'000 == 0) return plural(ms / 60'000, "minute");
  if (ms > 0 && ms % 1000 == 0) return plural(ms / 1000, "second");
  return std::to_string(ms) + " ms";
}

}  // namespace

struct Decoder::Impl {
  od::parser parser{kMaxLineBytes + kPadding};
  int64_t max_ts = INT64_MAX;
  std::string future_reason;

  void SetLimit(const TsLimit& limit) {
    max_ts = limit.max_ts_ms;
    if (max_ts != INT64_MAX)
      future_reason = "ts: more than " + FormatSpan(limit.ahead_ms) + " in the future";
  }

  // Reads a string field of 1..128 bytes into the arena.
  static bool ReadId(od::value value, std::string_view name, Arena* arena, std::string_view* out,
                     std::string* error) {
    std::string_view s;
    if (value.get_string().get(s) || s.empty() || s.size() > kMaxIdBytes) {
      *error = std::string(name) + ": must be a string of 1..128 bytes";
      return false;
    }
    *out = arena->Copy(s);
    return true;
  }

  // Decodes one object into `event`; returns "" or the rejection reason.
  std::string DecodeObject(od::object obj, Arena* arena, Event* event) {
    uint32_t seen = 0;
    std::string error;
    std::string_view type_text;
    for (auto field_result : obj) {
      od::field field;
      if (auto err = std::move(field_result).get(field)) return JsonError(err);
      std::string_view key;
      if (auto err = field.unescaped_key().get(key)) return JsonError(err);
      Field f = FieldOf(key);
      od::value value = field.value();
      if (f == kUnknown) {
        if (auto err = ValidateValue(value, 1)) return JsonError(err);
        continue;
      }
      if (seen & f) return "duplicate field '" + std::string(key) + "'";
      seen |= f;
      switch (f) {
        case kEventId:
          if (!ReadId(value, "event_id", arena, &event->event_id, &error)) return error;
          break;
        case kUserId:
          if (!ReadId(value, "user_id", arena, &event->user_id, &error)) return error;
          break;
        case kReferrerId:
          if (!ReadId(value, "referrer_id", arena, &event->referrer_id, &error)) return error;
          break;
        case kOrderId: {
          std::string_view s;
          if (value.get_string().get(s) || s.empty() || s.size() > kMaxIdBytes)
            return "order_id: must be a string of 1..128 bytes";
          break;
        }
        case kGroupId: {
          std::string_view s;
          if (value.get_string().get(s)) return "group_id: must be a string";
          break;
        }
        case kType: {
          if (value.get_string().get(type_text) || !TypeOf(type_text, &event->type)) {
            return "type: must be one of message, reaction, checkin, share, join, leave, "
                   "order, refund";
          }
          break;
        }
        case kTs: {
          od::json_type jt;
          if (auto err = value.type().get(jt)) return JsonError(err);
          int64_t ts;
          if (jt == od::json_type::number) {
            if (value.get_int64().get(ts))
              return "ts: must be integer milliseconds or an RFC 3339 string";
          } else if (jt == od::json_type::string) {
            std::string_view s;
            if (auto err = value.get_string().get(s)) return JsonError(err);
            auto parsed = ParseRfc3339(s);
            if (!parsed) return "ts: must be integer milliseconds or an RFC 3339 string";
            ts = *parsed;
          } else {
            return "ts: must be integer milliseconds or an RFC 3339 string";
          }
          if (!TsInRange(ts)) return "ts: must lie in [2000-01-01, 2100-01-01)";
          if (ts > max_ts) return future_reason;
          event->ts_ms = ts;
          break;
        }
        case kAmount: {
          od::json_type jt;
          if (auto err = value.type().get(jt)) return JsonError(err);
          if (jt != od::json_type::number) return "amount: must be a number";
          switch (
              DecimalToFen(TrimJson(value.raw_json_token()), kMaxAmountYuan, &event->amount_fen)) {
            case DecimalError::kOk:
              break;
            case DecimalError::kSyntax:
              return "amount: must be a number";
            case DecimalError::kNegative:
              return "amount: must be >= 0";
            case DecimalError::kTooLarge:
              return "amount: must be <= 1e9";
          }
          break;
        }
        case kChannel: {
          std::string_view s;
          if (value.get_string().get(s) || (s != "community" && s != "other"))
            return "channel: must be \"community\" or \"other\"";
          event->community = s == "community";
          break;
        }
        case kUnknown:
          break;
      }
    }
    if (!(seen & kEventId)) return "event_id: missing";
    if (!(seen & kType)) return "type: missing";
    if (!(seen & kUserId)) return "user_id: missing";
    if (!(seen & kTs)) return "ts: missing";
    if (event->type == EventType::kOrder || event->type == EventType::kRefund) {
      if (!(seen & kOrderId))
        return "order_id: missing (required for " + std::string(EventTypeName(event->type)) + ")";
      if (!(seen & kAmount))
        return "amount: missing (required for " + std::string(EventTypeName(event->type)) + ")";
    } else {
      event->amount_fen = 0;
    }
    if (event->type != EventType::kOrder) event->community = false;
    if (event->type != EventType::kJoin) event->referrer_id = {};
    return {};
  }

  std::string DecodeLine(const char* p, size_t len, size_t capacity, Arena* arena, Event* event) {
    od::document doc;
    if (auto err = parser.iterate(p, len, capacity).get(doc)) return JsonError(err);
    od::object obj;
    if (auto err = doc.get_object().get(obj)) {
      if (err == simdjson::INCORRECT_TYPE) return "not a JSON object";
      return JsonError(err);
    }
    std::string error = DecodeObject(obj, arena, event);
    if (!error.empty()) return error;
    // Anything after the closing brace makes the line invalid JSON.
    const char* location;
    if (doc.current_location().get(location) == simdjson::SUCCESS) {
      return "invalid JSON: trailing content after the object";
    }
    return {};
  }
};

const char* RejectReasonName(RejectReason r) {
  switch (r) {
    case RejectReason::kInvalidJson:
      return "invalid_json";
    case RejectReason::kTooLong:
      return "too_long";
    case RejectReason::kMissingField:
      return "missing_field";
    case RejectReason::kDuplicateField:
      return "duplicate_field";
    case RejectReason::kFutureTs:
      return "future_ts";
    case RejectReason::kBadField:
      return "bad_field";
    case RejectReason::kOther:
      break;
  }
  return "other";
}

RejectReason ClassifyReject(std::string_view reason) {
  // The reasons are the ones written above (DecodeLine, DecodeObject,
  // ReadId) and by the line framers: keep the two in step
  // (DecoderTest.EveryReasonHasItsClass).
  auto starts = [reason](std::string_view prefix) {
    return reason.substr(0, prefix.size()) == prefix;
  };
  if (starts("invalid JSON") || starts("not a JSON object")) return RejectReason::kInvalidJson;
  if (starts("line exceeds") || starts("element exceeds")) return RejectReason::kTooLong;
  if (starts("duplicate field")) return RejectReason::kDuplicateField;
  if (starts("ts: more than")) return RejectReason::kFutureTs;
  const size_t colon = reason.find(": ");
  if (colon != std::string_view::npos && colon > 0 && reason.find(' ') > colon) {
    const std::string_view rest = reason.substr(colon + 2);
    if (rest.substr(0, 7) == "missing") return RejectReason::kMissingField;
    if (rest.substr(0, 4) == "must") return RejectReason::kBadField;
  }
  return RejectReason::kOther;
}

Decoder::Decoder() : impl_(std::make_unique<Impl>()) {}
Decoder::~Decoder() = default;

uint64_t Decoder::DecodeLines(std::string_view data, uint64_t first_line, Arena* arena,
                              DecodeSink* sink) {
  impl_->SetLimit(sink->ts_limit());
  const char* p = data.data();
  const char* const end = p + data.size();
  uint64_t line = first_line;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* line_end = nl ? nl : end;
    size_t len = static_cast<size_t>(line_end - p);
    if (len > kMaxLineBytes) {
      sink->OnReject(line, "line exceeds 1 MiB", std::string_view(p, kMaxRawInLog));
    } else if (!IsBlank(p, len)) {
      Event event;
      std::string error =
          impl_->DecodeLine(p, len, static_cast<size_t>(end - p) + kPadding, arena, &event);
      if (error.empty()) {
        sink->set_event_line(line);
        sink->OnEvent(event);
      } else {
        sink->OnReject(line, error, std::string_view(p, len < kMaxRawInLog ? len : kMaxRawInLog));
      }
    }
    ++line;
    p = nl ? nl + 1 : end;
  }
  return line - first_line;
}

uint64_t Decoder::DecodeArrayElements(ArrayFramer* framer, size_t max_bytes, Arena* arena,
                                      DecodeSink* sink) {
  impl_->SetLimit(sink->ts_limit());
  const uint64_t first = framer->count();
  size_t decoded = 0;
  std::string_view element;
  while (decoded < max_bytes && framer->Next(&element)) {
    const uint64_t line = framer->count();
    decoded += element.size();
    if (element.size() > kMaxLineBytes) {
      sink->OnReject(line, "element exceeds 1 MiB", element.substr(0, kMaxRawInLog));
      continue;
    }
    Event event;
    // The element is parsed in place: what follows it in the buffer (more
    // elements, then the padding) is the read-ahead simdjson needs.
    std::string error = impl_->DecodeLine(
        element.data(), element.size(),
        static_cast<size_t>(framer->end() - element.data()) + kPadding, arena, &event);
    if (error.empty()) {
      sink->set_event_line(line);
      sink->OnEvent(event);
    } else {
      sink->OnReject(line, error,
                     element.substr(0, std::min<size_t>(element.size(), kMaxRawInLog)));
    }
  }
  return framer->count() - first;
}

std::string Decoder::DecodeArray(std::string_view data, Arena* arena, DecodeSink* sink) {
  ArrayFramer framer(data);
  DecodeArrayElements(&framer, SIZE_MAX, arena, sink);
  return framer.error();
}

namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

const char* SkipJsonSpace(const char* p, const char* end) {
  while (p < end && IsJsonSpace(*p)) ++p;
  return p;
}

// The bytes the framer stops at outside strings; it steps over all others.
constexpr std::array<bool, 256> kFramingBytes = [] {
  std::array<bool, 256> t{};
  for (char c : std::string_view("\"{}[],")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

// Past the closing quote of the string whose body starts at p; null if it
// never closes. A quote is escaped when an odd run of backslashes precedes it.
const char* SkipString(const char* p, const char* end) {
  for (;;) {
    const auto* quote = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
    if (quote == nullptr) return nullptr;
    const char* run = quote;
    while (run > p && run[-1] == '\\') --run;
    if ((quote - run) % 2 == 0) return quote + 1;
    p = quote + 1;
  }
}

}  // namespace

ArrayFramer::ArrayFramer(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {
  p_ = SkipJsonSpace(p_, end_);
  if (p_ == end_ || *p_ != '[') {
    Fail("not an array");
    return;
  }
  p_ = SkipJsonSpace(p_ + 1, end_);
  if (p_ < end_ && *p_ == ']') {  // []
    done_ = true;
    if (SkipJsonSpace(p_ + 1, end_) != end_) Fail("content after the closing ']'");
  }
}

bool ArrayFramer::Fail(std::string what) {
  done_ = true;
  error_ = "invalid JSON array: " + std::move(what);
  return false;
}

bool ArrayFramer::Next(std::string_view* element) {
  if (done_) return false;
  const char* const start = p_;
  const char* q = p_;
  uint64_t depth = 0;  // brackets opened inside the element
  for (;;) {
    while (q < end_ && !kFramingBytes[static_cast<unsigned char>(*q)]) ++q;
    if (q == end_) return Fail("missing ']' at the end");
    const char c = *q;
    if (c == '"') {
      q = SkipString(q + 1, end_);
      if (q == nullptr) return Fail("unterminated string in element " + std::to_string(count_ + 1));
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) {
        if (c == '}') return Fail("unexpected '}' in element " + std::to_string(count_ + 1));
        break;  // the array's own ']'
      }
      --depth;  // a mismatched pair is the element's own parse's to reject
    } else if (depth == 0) {
      break;  // ',' between elements
    }
    ++q;
  }
  const char* last = q;
  while (last > start && IsJsonSpace(last[-1])) --last;
  if (last == start) return Fail("element " + std::to_string(count_ + 1) + " is empty");
  *element = std::string_view(start, static_cast<size_t>(last - start));
  ++count_;
  if (*q == ',') {
    p_ = SkipJsonSpace(q + 1, end_);
  } else {
    done_ = true;
    if (SkipJsonSpace(q + 1, end_) != end_) {
      // The element itself is fine; the array is not. Return the element
      // (DecodeArray's caller discards everything on an error anyway).
      error_ = "invalid JSON array: content after the closing ']'";
    }
  }
  return true;
}

void PaddedBuffer::Reserve(size_t capacity) {
  if (capacity <= capacity_ && data_ != nullptr) return;
  // Not zero-filled: the pages of a large buffer stay untouched (not
  // resident) until bytes are written to them.
  auto grown = std::make_unique_for_overwrite<char[]>(capacity + kPadding);
  if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
  std::memset(grown.get() + capacity, 0, kPadding);
  data_ = std::move(grown);
  capacity_ = capacity;
}

void PaddedBuffer::Append(std::string_view bytes) {
  if (bytes.empty()) return;
  if (size_ + bytes.size() > capacity_ || data_ == nullptr) {
    size_t want = capacity_ * 2;
    if (want < size_ + bytes.size()) want = size_ + bytes.size();
    Reserve(want);
  }
  std::memcpy(data_.get() + size_, bytes.data(), bytes.size());
  size_ += bytes.size();
}

void PaddedBuffer::Consume(size_t n) {
  if (n >= size_) {
    size_ = 0;
    return;
  }
  std::memmove(data_.get(), data_.get() + n, size_ - n);
  size_ -= n;
}

void PaddedBuffer::set_size(size_t n) { size_ = n; }

}  // namespace tierstream::ingest
