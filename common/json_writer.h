// JsonWriter: appends compact JSON to a std::string. Callers emit keys and
// values in order; the writer inserts commas and escapes strings (control
// characters, quotes, backslashes; invalid UTF-8 bytes become U+FFFD so the
// output is always valid JSON). Thread safety: confined.
#ifndef TIERSTREAM_COMMON_JSON_WRITER_H_
#define TIERSTREAM_COMMON_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace tierstream {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Double(double v);  // shortest round-trip form
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  JsonWriter& Yuan(int64_t fen);  // money: fen as a yuan number "129.50"

  static void AppendEscaped(std::string* out, std::string_view s);

 private:
  void Separate();
  std::string* out_;
  bool need_comma_ = false;
};

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_JSON_WRITER_H_
