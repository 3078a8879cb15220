// Decoder: NDJSON bytes -> validated Events (SPEC §1), with a one-line reason
// naming the field for every rejected line.
//
// One Decoder owns one reused simdjson On-Demand parser and is confined to
// one thread. Input buffers must have kPadding readable bytes past their end
// (simdjson reads ahead); PaddedBuffer provides that. Lines are framed with
// memchr and each is parsed in place inside the big buffer: no copy, no
// allocation per line, and a malformed line never hides its neighbours. A
// JSON array body is framed element by element (ArrayFramer) and each
// element parsed the same way, so an array may be as large as a body.
#ifndef TIERSTREAM_INGEST_DECODER_H_
#define TIERSTREAM_INGEST_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/arena.h"
#include "ingest/event.h"

namespace tierstream::ingest {

inline constexpr size_t kPadding = 64;                // >= SIMDJSON_PADDING
inline constexpr size_t kMaxLineBytes = 1024 * 1024;  // SPEC §1: longer lines are rejected

struct LineError {
  uint64_t line = 0;  // 1-based, counted over the whole body or connection
  std::string error;
};

// The latest event time a sink accepts: later events are rejected with a
// reason naming the margin ("ts: more than 1 day in the future").
struct TsLimit {
  int64_t max_ts_ms = INT64_MAX;  // INT64_MAX: no limit
  int64_t ahead_ms = 0;           // the margin past the wall clock, for the reason
};

// The class of a rejection reason, for counting rejections by cause
// (GET /metrics): a small fixed set, where the reasons themselves name
// fields and values. kOther is for a reason this decoder does not give.
enum class RejectReason : uint8_t {
  kInvalidJson,     // "invalid JSON: ...", "not a JSON object"
  kTooLong,         // "line exceeds 1 MiB", "element exceeds 1 MiB"
  kMissingField,    // "<field>: missing..."
  kDuplicateField,  // "duplicate field '<field>'"
  kFutureTs,        // "ts: more than ... in the future"
  kBadField,        // "<field>: must ..." (a wrong type or range)
  kOther,
};
inline constexpr size_t kRejectReasonCount = 7;
// "invalid_json", "too_long", "missing_field", "duplicate_field",
// "future_ts", "bad_field", "other".
const char* RejectReasonName(RejectReason r);
// The class of `reason`, as OnReject is given it. A few prefix compares.
RejectReason ClassifyReject(std::string_view reason);

// Where decoded events go. The decoder calls exactly one of these per
// non-blank line, in line order.
class DecodeSink {
 public:
  virtual ~DecodeSink() = default;
  // Asked once per DecodeLines/DecodeArray call.
  virtual TsLimit ts_limit() const { return {}; }
  virtual void OnEvent(const Event& event) = 0;
  // `raw` is the rejected line (possibly truncated), for the rejection log.
  virtual void OnReject(uint64_t line, std::string_view reason, std::string_view raw) = 0;
  // During OnEvent: the event's line (an array's element number).
  uint64_t event_line() const { return event_line_; }
  void set_event_line(uint64_t line) { event_line_ = line; }

 private:
  uint64_t event_line_ = 0;
};

class ArrayFramer;

class Decoder {
 public:
  Decoder();
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes every complete or final line of `data`; line numbers start at
  // `first_line`. Strings of emitted events are copied into `arena`.
  // REQUIRES: kPadding readable bytes after data.data() + data.size().
  // Returns the number of lines consumed (blank lines included).
  uint64_t DecodeLines(std::string_view data, uint64_t first_line, Arena* arena, DecodeSink* sink);

  // Decodes the next elements of the JSON array that `framer` walks, each
  // as its own document (element k of the array is reported as line k,
  // 1-based, like a line of NDJSON: an element that is not a valid event
  // object is rejected, the others still count), until at least
  // `max_bytes` of elements were decoded or the array ends or breaks
  // (framer->error()). Returns the number of elements consumed.
  // REQUIRES: kPadding readable bytes after the data the framer walks.
  uint64_t DecodeArrayElements(ArrayFramer* framer, size_t max_bytes, Arena* arena,
                               DecodeSink* sink);

  // Decodes a whole JSON array of event objects (the alternative POST body
  // of SPEC §6) with DecodeArrayElements. A structurally broken array (see
  // ArrayFramer) stops at the break: returns its message ("" on success).
  // REQUIRES: kPadding readable bytes after data.data() + data.size().
  std::string DecodeArray(std::string_view data, Arena* arena, DecodeSink* sink);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Finds the top-level elements of a JSON array without parsing them: only
// strings (for brackets and commas inside them) and bracket nesting are
// tracked. Each element is then parsed on its own by the decoder's line
// parser, whose buffers stay sized for one 1 MiB line however large the
// array (simdjson sized for a whole 64 MiB document would need about five
// times that). What the framer lets through as an element may still be
// invalid JSON: the element's own parse rejects it.
//
// Borrows `data`; confined to one thread.
class ArrayFramer {
 public:
  explicit ArrayFramer(std::string_view data);

  // Sets *element to the next element, without surrounding whitespace, and
  // returns true. Returns false at the end of the array, or at a structural
  // error (an unterminated string or array, an empty element, content after
  // the closing bracket), which error() then names.
  bool Next(std::string_view* element);
  bool done() const { return done_; }
  // "" unless the array is structurally broken: "invalid JSON array: ...".
  const std::string& error() const { return error_; }
  // Elements returned so far.
  uint64_t count() const { return count_; }
  // One past the last byte of the data walked.
  const char* end() const { return end_; }

 private:
  bool Fail(std::string what);

  const char* p_;  // the next element's first byte, once past the '['
  const char* end_;
  uint64_t count_ = 0;
  bool done_ = false;
  std::string error_;
};

// A heap buffer with at least kPadding readable bytes past its logical end
// (what lies between the end and the capacity is unspecified; the kPadding
// bytes past the capacity are zero).
class PaddedBuffer {
 public:
  PaddedBuffer() = default;
  explicit PaddedBuffer(size_t capacity) { Reserve(capacity); }
  void Reserve(size_t capacity);
  void Append(std::string_view bytes);
  void Clear() { size_ = 0; }
  // Drops the first n bytes, moving the rest to the front.
  void Consume(size_t n);
  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  void set_size(size_t n);  // REQUIRES: n <= capacity()
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace tierstream::ingest

#endif  // TIERSTREAM_INGEST_DECODER_H_
