// Status and Result<T>: value-or-error for expected failures (bad input, I/O).
//
// A Status is either OK or carries a code and a one-line message that names
// what was wrong ("amount: must be a number"). Result<T> holds a T or a
// non-OK Status, shaped like std::expected. Both are cheap to move; an OK
// Status allocates nothing. Thread safety: const-safe.
#ifndef TIERSTREAM_COMMON_STATUS_H_
#define TIERSTREAM_COMMON_STATUS_H_

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tierstream {

enum class StatusCode : unsigned char {
  kOk = 0,
  kInvalidArgument,  // the caller's input is malformed
  kNotFound,
  kIoError,      // the store or the file system failed
  kUnavailable,  // temporarily refused (disk watermark, overload)
  kCorruption,   // persisted bytes do not decode
  kFailedPrecondition,
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string_view message)
      : rep_(std::make_unique<Rep>(Rep{code, std::string(message)})) {}
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view m) { return {StatusCode::kInvalidArgument, m}; }
  static Status NotFound(std::string_view m) { return {StatusCode::kNotFound, m}; }
  static Status IoError(std::string_view m) { return {StatusCode::kIoError, m}; }
  static Status Unavailable(std::string_view m) { return {StatusCode::kUnavailable, m}; }
  static Status Corruption(std::string_view m) { return {StatusCode::kCorruption, m}; }
  static Status FailedPrecondition(std::string_view m) {
    return {StatusCode::kFailedPrecondition, m};
  }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // The one-line message; empty when OK.
  std::string_view message() const { return rep_ ? std::string_view(rep_->message) : ""; }
  std::string ToString() const { return ok() ? "OK" : rep_->message; }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::unique_ptr<Rep> rep_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit like std::expected
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result built from an OK Status has no value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_STATUS_H_
