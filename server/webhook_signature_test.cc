#include "server/webhook_signature.h"

#include <gtest/gtest.h>

namespace tierstream::server {
namespace {

// The expected values were computed independently, once, with OpenSSL's
// command line, e.g.
//   printf '%s' "$BODY" | openssl dgst -sha256 -hmac 'whsec-0123456789abcdef'
TEST(WebhookSignature, IsTheHmacSha256OfTheExactBodyInLowercaseHex) {
  const std::string body =
      R"({"changes":[{"cursor":"7","user_id":"u0000042","seq":3,"from":"active","to":"dormant",)"
      R"("at":1763999999999,"cause":{"time":true}}]})";
  EXPECT_EQ(WebhookSignature("whsec-0123456789abcdef", body),
            "sha256=3ab9ddb77531f419204fab760bdfab4dd0dc015c6cd20bcd4a1d1f2b9b850706");
  // The well-known example of HMAC-SHA256 (Wikipedia, "HMAC").
  EXPECT_EQ(HmacSha256Hex("key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  EXPECT_EQ(HmacSha256Hex("key", ""),
            "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

TEST(WebhookSignature, ChangesWithOneByteOfTheBodyOrTheSecret) {
  const std::string a = WebhookSignature("secret", R"({"changes":[]})");
  EXPECT_NE(a, WebhookSignature("secret", R"({"changes":[] })"));
  EXPECT_NE(a, WebhookSignature("secreT", R"({"changes":[]})"));
  EXPECT_EQ(a, WebhookSignature("secret", R"({"changes":[]})"));
}

}  // namespace
}  // namespace tierstream::server
