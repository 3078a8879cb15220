// HMAC-SHA256 signatures of webhook bodies (OpenSSL's one-shot HMAC).
#include "server/webhook_signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>

namespace tierstream::server {

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  // An empty message's data pointer may be null; OpenSSL wants a buffer.
  static const unsigned char kNothing = 0;
  const auto* data =
      message.empty() ? &kNothing : reinterpret_cast<const unsigned char*>(message.data());
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data, message.size(), mac,
           &mac_len) == nullptr) {
    std::abort();  // only on allocation failure inside OpenSSL
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * mac_len);
  for (unsigned int i = 0; i < mac_len; ++i) {
    hex.push_back(kHex[mac[i] >> 4]);
    hex.push_back(kHex[mac[i] & 15]);
  }
  return hex;
}

std::string WebhookSignature(std::string_view secret, std::string_view body) {
  return "sha256=" + HmacSha256Hex(secret, body);
}

}  // namespace tierstream::server
