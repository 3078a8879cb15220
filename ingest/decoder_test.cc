#include "ingest/decoder.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace tierstream::ingest {
namespace {

struct Collect : DecodeSink {
  std::vector<Event> events;
  std::vector<std::pair<uint64_t, std::string>> rejects;
  void OnEvent(const Event& e) override { events.push_back(e); }
  void OnReject(uint64_t line, std::string_view reason, std::string_view) override {
    rejects.emplace_back(line, std::string(reason));
  }
};

class DecoderTest : public ::testing::Test {
 protected:
  Collect Decode(const std::string& text) {
    buf_ = std::make_unique<PaddedBuffer>(text.size());
    buf_->Append(text);
    Collect c;
    decoder_.DecodeLines(buf_->view(), 1, &arena_, &c);
    return c;
  }
  // The rejection reason of a single line ("" if accepted).
  std::string Reason(const std::string& line) {
    Collect c = Decode(line);
    if (c.rejects.empty()) return "";
    return c.rejects[0].second;
  }

  Decoder decoder_;
  Arena arena_;
  std::unique_ptr<PaddedBuffer> buf_;
};

const char* kOrder =
    R"({"event_id":"e3","type":"order","user_id":"u2","ts":1763975000000,"order_id":"o9","amount":129.5,"channel":"community"})";

TEST_F(DecoderTest, DecodesEveryFieldOfTheSpecExamples) {
  Collect c = Decode(
      R"({"event_id":"e1","type":"join","user_id":"u2","ts":1763971200000,"group_id":"g1","referrer_id":"u1"})"
      "\n"
      R"({"event_id":"e2","type":"message","user_id":"u2","ts":"2026-11-24T09:15:00+08:00","group_id":"g1","text":"大家好 👋"})"
      "\n" +
      std::string(kOrder) + "\n" +
      R"({"event_id":"e4","type":"refund","user_id":"u2","ts":1764000000000,"order_id":"o9","amount":29.5})");
  ASSERT_TRUE(c.rejects.empty()) << c.rejects[0].second;
  ASSERT_EQ(c.events.size(), 4u);
  EXPECT_EQ(c.events[0].type, EventType::kJoin);
  EXPECT_EQ(c.events[0].referrer_id, "u1");
  EXPECT_EQ(c.events[1].type, EventType::kMessage);
  EXPECT_EQ(c.events[1].ts_ms, 1795482900000);
  EXPECT_EQ(c.events[2].amount_fen, 12950);
  EXPECT_TRUE(c.events[2].community);
  EXPECT_EQ(c.events[3].type, EventType::kRefund);
  EXPECT_EQ(c.events[3].amount_fen, 2950);
}

TEST_F(DecoderTest, UnescapesIdsAndIgnoresUnknownFields) {
  Collect c = Decode(
      R"({"event_id":"e\u0031","type":"share","user_id":"\u7528\u6237","ts":1763971200000,"x":{"a":[1,2,{"b":null}]},"y":[true,false],"z":-1.5e-3})");
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].event_id, "e1");
  EXPECT_EQ(c.events[0].user_id, "用户");
}

TEST_F(DecoderTest, EveryRejectionNamesItsField) {
  EXPECT_EQ(Reason("{not json").rfind("invalid JSON: ", 0), 0u);
  EXPECT_EQ(Reason("[1,2]"), "not a JSON object");
  EXPECT_EQ(Reason("42"), "not a JSON object");
  EXPECT_EQ(Reason(R"({"type":"message","user_id":"u","ts":1763971200000})"), "event_id: missing");
  EXPECT_EQ(Reason(R"({"event_id":"e","user_id":"u","ts":1763971200000})"), "type: missing");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"message","ts":1763971200000})"), "user_id: missing");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"message","user_id":"u"})"), "ts: missing");
  EXPECT_EQ(Reason(R"({"event_id":"","type":"message","user_id":"u","ts":1763971200000})"),
            "event_id: must be a string of 1..128 bytes");
  EXPECT_EQ(Reason(R"({"event_id":7,"type":"message","user_id":"u","ts":1763971200000})"),
            "event_id: must be a string of 1..128 bytes");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"message","user_id":")" + std::string(129, 'x') +
                   R"(","ts":1763971200000})"),
            "user_id: must be a string of 1..128 bytes");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"poke","user_id":"u","ts":1763971200000})"),
            "type: must be one of message, reaction, checkin, share, join, leave, order, refund");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":"yesterday"})"),
            "ts: must be integer milliseconds or an RFC 3339 string");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":1.5})"),
            "ts: must be integer milliseconds or an RFC 3339 string");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":12})"),
            "ts: must lie in [2000-01-01, 2100-01-01)");
  EXPECT_EQ(
      Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":"2100-01-01T00:00:00Z"})"),
      "ts: must lie in [2000-01-01, 2100-01-01)");
  EXPECT_EQ(
      Reason(R"({"event_id":"e","type":"order","user_id":"u","ts":1763971200000,"amount":1})"),
      "order_id: missing (required for order)");
  EXPECT_EQ(
      Reason(R"({"event_id":"e","type":"refund","user_id":"u","ts":1763971200000,"order_id":"o"})"),
      "amount: missing (required for refund)");
  EXPECT_EQ(
      Reason(
          R"({"event_id":"e","type":"order","user_id":"u","ts":1763971200000,"order_id":"o","amount":-5})"),
      "amount: must be >= 0");
  EXPECT_EQ(
      Reason(
          R"({"event_id":"e","type":"order","user_id":"u","ts":1763971200000,"order_id":"o","amount":"12"})"),
      "amount: must be a number");
  EXPECT_EQ(
      Reason(
          R"({"event_id":"e","type":"order","user_id":"u","ts":1763971200000,"order_id":"o","amount":1e400})"),
      "amount: must be <= 1e9");
  EXPECT_EQ(
      Reason(
          R"({"event_id":"e","type":"order","user_id":"u","ts":1763971200000,"order_id":"o","amount":1,"channel":"web"})"),
      "channel: must be \"community\" or \"other\"");
  EXPECT_EQ(
      Reason(R"({"event_id":"e","type":"message","user_id":"u","user_id":"v","ts":1763971200000})"),
      "duplicate field 'user_id'");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":1763971200000} x)")
                .rfind("invalid JSON: ", 0),
            0u);
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":1763971200000} {})")
                .rfind("invalid JSON: ", 0),
            0u);
}

// The metrics count rejections by the class of their reason: every reason
// the decoder gives must fall in a class of its own, none in "other".
TEST_F(DecoderTest, EveryReasonHasItsClass) {
  const std::string head = R"({"event_id":"e","type":"order","user_id":"u","ts":1763971200000,)";
  const std::pair<std::string, RejectReason> cases[] = {
      {"{not json", RejectReason::kInvalidJson},
      {"[1,2]", RejectReason::kInvalidJson},
      {R"({"event_id":"e","type":"message","user_id":"u","ts":1} x)", RejectReason::kInvalidJson},
      {"{\"event_id\":\"e\xff\"}", RejectReason::kInvalidJson},
      {R"({"type":"message","user_id":"u","ts":1763971200000})", RejectReason::kMissingField},
      {head + R"("amount":1})", RejectReason::kMissingField},
      {head + R"("order_id":"o"})", RejectReason::kMissingField},
      {R"({"event_id":"e","type":"message","user_id":"u","user_id":"v"})",
       RejectReason::kDuplicateField},
      {R"({"event_id":"","type":"message","user_id":"u","ts":1763971200000})",
       RejectReason::kBadField},
      {R"({"event_id":"e","type":"poke","user_id":"u","ts":1763971200000})",
       RejectReason::kBadField},
      {R"({"event_id":"e","type":"message","user_id":"u","ts":"yesterday"})",
       RejectReason::kBadField},
      {R"({"event_id":"e","type":"message","user_id":"u","ts":12})", RejectReason::kBadField},
      {R"({"event_id":"e","type":"message","user_id":"u","ts":1763971200000,"group_id":1})",
       RejectReason::kBadField},
      {head + R"("order_id":7,"amount":1})", RejectReason::kBadField},
      {head + R"("order_id":"o","amount":-5})", RejectReason::kBadField},
      {head + R"("order_id":"o","amount":"12"})", RejectReason::kBadField},
      {head + R"("order_id":"o","amount":1,"channel":"web"})", RejectReason::kBadField},
      {R"({"event_id":"e","type":"join","user_id":"u","ts":1763971200000,"referrer_id":""})",
       RejectReason::kBadField},
  };
  for (const auto& [line, want] : cases) {
    const std::string reason = Reason(line);
    ASSERT_NE(reason, "") << line;
    EXPECT_EQ(RejectReasonName(ClassifyReject(reason)), std::string(RejectReasonName(want)))
        << reason;
  }
  EXPECT_EQ(ClassifyReject("line exceeds 1 MiB"), RejectReason::kTooLong);
  EXPECT_EQ(ClassifyReject("element exceeds 1 MiB"), RejectReason::kTooLong);
  EXPECT_EQ(ClassifyReject("ts: more than 1 day in the future"), RejectReason::kFutureTs);
  EXPECT_EQ(ClassifyReject("something else: entirely"), RejectReason::kOther);
  EXPECT_EQ(ClassifyReject(""), RejectReason::kOther);
  EXPECT_STREQ(RejectReasonName(RejectReason::kOther), "other");
  // The names are the label values: distinct, one per class.
  std::set<std::string> names;
  for (size_t i = 0; i < kRejectReasonCount; ++i) {
    names.insert(RejectReasonName(static_cast<RejectReason>(i)));
  }
  EXPECT_EQ(names.size(), kRejectReasonCount);
}

TEST_F(DecoderTest, RejectsBrokenJsonInIgnoredFields) {
  EXPECT_NE(
      Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":1763971200000,"text":tru})"),
      "");
  EXPECT_NE(Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":1763971200000,"n":01})"),
            "");
  EXPECT_NE(
      Reason(R"({"event_id":"e","type":"message","user_id":"u","ts":1763971200000,"t":"\x"})"), "");
}

TEST_F(DecoderTest, RejectsInvalidUtf8AndDeepNesting) {
  EXPECT_EQ(
      Reason("{\"event_id\":\"e\xff\",\"type\":\"message\",\"user_id\":\"u\",\"ts\":1763971200000}")
          .rfind("invalid JSON", 0),
      0u);
  std::string deep = R"({"event_id":"e","type":"message","user_id":"u","ts":1763971200000,"x":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(Reason(deep).rfind("invalid JSON", 0), 0u);
}

TEST_F(DecoderTest, RejectsLinesOverOneMebibyteAndKeepsGoing) {
  std::string big = R"({"event_id":"e","type":"message","user_id":"u","ts":1763971200000,"text":")";
  big += std::string(kMaxLineBytes, 'a') + "\"}";
  Collect c = Decode(big + "\n" + kOrder + "\n");
  ASSERT_EQ(c.rejects.size(), 1u);
  EXPECT_EQ(c.rejects[0].first, 1u);
  EXPECT_EQ(c.rejects[0].second, "line exceeds 1 MiB");
  ASSERT_EQ(c.events.size(), 1u);
}

TEST_F(DecoderTest, CountsLinesAcrossBlanksAndCrlf) {
  Collect c = Decode(std::string(kOrder) + "\r\n\n  \nnope\n" + kOrder);
  EXPECT_EQ(c.events.size(), 2u);
  ASSERT_EQ(c.rejects.size(), 1u);
  EXPECT_EQ(c.rejects[0].first, 4u);
}

TEST_F(DecoderTest, AcceptsEmptyInput) {
  // Regression (found by decoder_fuzz): an empty PaddedBuffer had no storage
  // and memcpy was handed a null pointer.
  Collect c = Decode("");
  EXPECT_TRUE(c.events.empty());
  EXPECT_TRUE(c.rejects.empty());
  EXPECT_NE(buf_->data(), nullptr);
}

TEST_F(DecoderTest, DecodesJsonArrayBodies) {
  std::string body = std::string("[") + kOrder + ",42," + kOrder + "]";
  PaddedBuffer buf(body.size());
  buf.Append(body);
  Collect c;
  EXPECT_EQ(decoder_.DecodeArray(buf.view(), &arena_, &c), "");
  EXPECT_EQ(c.events.size(), 2u);
  ASSERT_EQ(c.rejects.size(), 1u);
  EXPECT_EQ(c.rejects[0].first, 2u);
  EXPECT_EQ(c.rejects[0].second, "not a JSON object");

  std::string broken = std::string("[") + kOrder + ",";
  PaddedBuffer buf2(broken.size());
  buf2.Append(broken);
  Collect c2;
  EXPECT_NE(decoder_.DecodeArray(buf2.view(), &arena_, &c2), "");
}

// Regression: an array body was parsed as one document by the 1 MiB line
// parser, so arrays over 1 MiB failed whole ("This parser can't support a
// document that big") while bodies may be up to --max-body-bytes.
TEST_F(DecoderTest, DecodesArraysLargerThanALine) {
  std::string body = "[";
  constexpr int kEvents = 20000;  // about 3 MB
  for (int i = 0; i < kEvents; ++i) {
    if (i > 0) body += ",\n ";
    body += R"({"event_id":"big)" + std::to_string(i) +
            R"(","type":"message","user_id":"u1","ts":1763971200000,"text":")" +
            std::string(80, 'x') + R"("})";
  }
  body += "]\n";
  ASSERT_GT(body.size(), 3 * kMaxLineBytes);
  PaddedBuffer buf(body.size());
  buf.Append(body);
  Collect c;
  EXPECT_EQ(decoder_.DecodeArray(buf.view(), &arena_, &c), "");
  EXPECT_EQ(c.events.size(), static_cast<size_t>(kEvents));
  EXPECT_TRUE(c.rejects.empty()) << c.rejects[0].second;

  // In slices: each call stops once ~max_bytes were decoded; lines go on.
  ArrayFramer framer(buf.view());
  Collect sliced;
  uint64_t elements = 0, calls = 0;
  while (!framer.done()) {
    elements += decoder_.DecodeArrayElements(&framer, 1 << 20, &arena_, &sliced);
    ++calls;
  }
  EXPECT_EQ(framer.error(), "");
  EXPECT_EQ(elements, static_cast<uint64_t>(kEvents));
  EXPECT_EQ(sliced.events.size(), static_cast<size_t>(kEvents));
  EXPECT_GE(calls, 3u);
}

// The framer tracks strings and nesting only; what is wrong inside an
// element is that element's rejection, like a bad line.
TEST_F(DecoderTest, FramesArrayElementsAndNamesStructuralErrors) {
  auto frame = [](const std::string& text, std::vector<std::string>* elements) {
    PaddedBuffer buf(text.size());
    buf.Append(text);
    ArrayFramer framer(buf.view());
    for (std::string_view e; framer.Next(&e);) elements->emplace_back(e);
    return framer.error();
  };
  std::vector<std::string> e;
  EXPECT_EQ(frame(R"( [ {"a":"],\"[{"} , [1,[2]] ,"x\\",3 ] )", &e), "");
  EXPECT_EQ(e, (std::vector<std::string>{R"({"a":"],\"[{"})", "[1,[2]]", R"("x\\")", "3"}));
  e.clear();
  EXPECT_EQ(frame("[]", &e), "");
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(frame("[1,,2]", &e), "invalid JSON array: element 2 is empty");
  EXPECT_EQ(frame("[1,2,]", &e), "invalid JSON array: element 3 is empty");
  EXPECT_EQ(frame("[1] [2]", &e), "invalid JSON array: content after the closing ']'");
  EXPECT_EQ(frame(R"(["abc])", &e), "invalid JSON array: unterminated string in element 1");
  EXPECT_EQ(frame("[{]", &e), "invalid JSON array: missing ']' at the end");
  EXPECT_EQ(frame("[1}", &e), "invalid JSON array: unexpected '}' in element 1");
  EXPECT_EQ(frame("{}", &e), "invalid JSON array: not an array");

  // Elements that frame but do not parse are rejected one by one.
  const std::string body = std::string("[") + kOrder + R"(,{"event_id":tru},[1,2},)" + kOrder + "]";
  PaddedBuffer buf(body.size());
  buf.Append(body);
  Collect c;
  EXPECT_EQ(decoder_.DecodeArray(buf.view(), &arena_, &c), "");
  EXPECT_EQ(c.events.size(), 2u);
  ASSERT_EQ(c.rejects.size(), 2u);
  EXPECT_EQ(c.rejects[0].first, 2u);
  EXPECT_EQ(c.rejects[1].first, 3u);
}

// One event dated 2030 moved T five years ahead and made almost everyone
// dormant: events too far past the wall clock are rejected, naming ts.
TEST_F(DecoderTest, RejectsEventsTooFarInTheFuture) {
  struct Limited : Collect {
    TsLimit ts_limit() const override { return {1763971200000 + 86'400'000, 86'400'000}; }
  } c;
  const std::string text =
      R"({"event_id":"ok","type":"message","user_id":"u","ts":1764057600000})"
      "\n"
      R"({"event_id":"far","type":"message","user_id":"u","ts":1764057600001})"
      "\n"
      R"({"event_id":"y2030","type":"message","user_id":"u","ts":"2030-11-24T09:15:00+08:00"})";
  buf_ = std::make_unique<PaddedBuffer>(text.size());
  buf_->Append(text);
  decoder_.DecodeLines(buf_->view(), 1, &arena_, &c);
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].event_id, "ok");  // exactly one day ahead is still accepted
  ASSERT_EQ(c.rejects.size(), 2u);
  EXPECT_EQ(c.rejects[0],
            std::make_pair(uint64_t{2}, std::string("ts: more than 1 day in the future")));
  EXPECT_EQ(c.rejects[1].second, "ts: more than 1 day in the future");
  // The same limit holds for JSON array bodies, and the reason names the margin.
  struct TwoHours : Collect {
    TsLimit ts_limit() const override { return {1763971200000, 2 * 3'600'000}; }
  } a;
  const std::string arr = R"([{"event_id":"x","type":"message","user_id":"u","ts":1763971200001}])";
  PaddedBuffer abuf(arr.size());
  abuf.Append(arr);
  EXPECT_EQ(decoder_.DecodeArray(abuf.view(), &arena_, &a), "");
  ASSERT_EQ(a.rejects.size(), 1u);
  EXPECT_EQ(a.rejects[0].second, "ts: more than 2 hours in the future");
  // Without a limit (the default, or max_future_ms 0) nothing is rejected for it.
  EXPECT_EQ(
      Reason(R"({"event_id":"z","type":"message","user_id":"u","ts":"2099-01-01T00:00:00Z"})"), "");
}

}  // namespace
}  // namespace tierstream::ingest
