// The signature of a webhook's request: HMAC-SHA256 of the exact body with
// the webhook's secret, as "sha256=<64 lowercase hex digits>" in the
// X-Tierstream-Signature header (OpenSSL's HMAC). A receiver recomputes it
// over the bytes it received (README: "Webhooks").
//
// Thread safety: thread-safe (pure functions).
#ifndef TIERSTREAM_SERVER_WEBHOOK_SIGNATURE_H_
#define TIERSTREAM_SERVER_WEBHOOK_SIGNATURE_H_

#include <string>
#include <string_view>

namespace tierstream::server {

// HMAC-SHA256 of `message` keyed with `key`, in lowercase hex.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// The X-Tierstream-Signature header's value: "sha256=" + HmacSha256Hex.
std::string WebhookSignature(std::string_view secret, std::string_view body);

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_WEBHOOK_SIGNATURE_H_
