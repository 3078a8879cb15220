// RequestBody: the Beast body type of HTTP requests, read into a padded
// buffer that the decoder parses in place, and charged to the BodyBudget as
// it grows. Confined to its connection's thread.
#ifndef TIERSTREAM_SERVER_REQUEST_BODY_H_
#define TIERSTREAM_SERVER_REQUEST_BODY_H_

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <limits>
#include <string_view>

#include "ingest/decoder.h"
#include "server/body_budget.h"

namespace tierstream::server {

// A POST body as it arrives: kept in an ingest::PaddedBuffer, which the
// decoder parses in place (no second copy), and grown with the bytes that
// actually arrive: doubling, up to the declared Content-Length, so a buffer
// is at most twice what was received. (Beast's string_body reserves the
// declared length up front: 90 connections declaring 64 MiB each reserved
// 5.9 GB.) Each growth is first charged to the server's BodyBudget; when
// the budget cannot spare it, the read fails with no_buffer_space.
struct RequestBody {
  struct value_type {
    ingest::PaddedBuffer bytes;
    BodyCharge charge;  // what `bytes` holds of the budget
  };

  class reader {
   public:
    template <bool kIsRequest, class Fields>
    reader(boost::beast::http::header<kIsRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<uint64_t>& length, boost::beast::error_code& ec) {
      if (length) declared_ = *length;
      ec = {};
    }

    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      const size_t n = boost::beast::buffer_bytes(buffers);
      ingest::PaddedBuffer& bytes = body_.bytes;
      if (bytes.size() + n > bytes.capacity()) {
        constexpr uint64_t kFirst = 64 * 1024;
        const uint64_t needed = bytes.size() + n;
        uint64_t grown = std::max<uint64_t>(2 * uint64_t{bytes.capacity()}, kFirst);
        grown = std::max(std::min(grown, declared_), needed);
        if (!body_.charge.GrowTo(grown + ingest::kPadding)) {
          ec = boost::asio::error::no_buffer_space;
          return 0;
        }
        bytes.Reserve(static_cast<size_t>(grown));
      }
      for (const auto buffer : boost::beast::buffers_range_ref(buffers)) {
        bytes.Append(std::string_view(static_cast<const char*>(buffer.data()), buffer.size()));
      }
      ec = {};
      return n;
    }

    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
    uint64_t declared_ = std::numeric_limits<uint64_t>::max();  // Content-Length, if any
  };
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_REQUEST_BODY_H_
