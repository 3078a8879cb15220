// The bearer token checks of the listeners: the Authorization header of an
// HTTP request, the AUTH line of a TCP producer, and a peek at the first
// bytes of a connection not yet authenticated (Admission uses it to spare
// a connection whose token has arrived but not been read).
// Thread safety: const-safe (pure functions; PresentsToken only peeks).
#ifndef TIERSTREAM_SERVER_AUTH_H_
#define TIERSTREAM_SERVER_AUTH_H_

#include <string>
#include <string_view>

namespace tierstream::server {

// Whether a == b, in time that depends on a's length only; false when b is
// empty (no token never matches).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Whether an Authorization value is "Bearer TOKEN" (the scheme in any case,
// RFC 9110 §11.1), the token compared in constant time.
bool BearerMatches(std::string_view value, const std::string& token);

// Whether the first bytes of connection `fd`, if they have arrived, carry
// the token: the AUTH line (TCP), or an Authorization header in a complete
// HTTP header. Peeked (MSG_PEEK), not read: the session reads and checks
// them as usual (and a descriptor closed and reused meanwhile only misleads
// this guess).
bool PresentsToken(int fd, bool http, const std::string& token);

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_AUTH_H_
