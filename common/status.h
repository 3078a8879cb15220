// Status and Result<T>: the one error regime of tierstream, for expected
// failures (bad input, I/O). Exceptions are not used for them; assertions are
// for programmer invariants only.
//
// A Status is either OK or carries a code and a one-line message that names
// what was wrong ("amount: must be a number"). Result<T> holds a T or a
// non-OK Status, with the subset of std::expected<T, Status> that the code
// needs (has_value, operator bool, value, error, value_or, operator*, ->), so
// that it can become an alias of std::expected once the toolchain has it.
// Both are cheap to move; an OK Status allocates nothing.
//
//   RETURN_IF_ERROR(store->Write(batch));           // returns the Status if not OK
//   ASSIGN_OR_RETURN(auto config, LoadConfig(path));  // returns its Status if not OK
//
// Thread safety: const-safe.
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
  kInternal,  // a part of the program failed (an exception escaped a thread): restart it
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
  static Status Internal(std::string_view m) { return {StatusCode::kInternal, m}; }

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
  bool has_value() const { return value_.has_value(); }
  explicit operator bool() const { return value_.has_value(); }
  // The error; OK when the Result holds a value.
  const Status& status() const { return status_; }
  const Status& error() const& { return status_; }
  Status&& error() && { return std::move(status_); }
  template <typename U>
  T value_or(U&& fallback) const& {
    return value_ ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }
  template <typename U>
  T value_or(U&& fallback) && {
    return value_ ? std::move(*value_) : static_cast<T>(std::forward<U>(fallback));
  }
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

#define TIERSTREAM_STATUS_CONCAT_INNER_(a, b) a##b
#define TIERSTREAM_STATUS_CONCAT_(a, b) TIERSTREAM_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (a Status) and returns it from the enclosing function
// unless it is OK.
#define RETURN_IF_ERROR(expr)                                \
  do {                                                       \
    ::tierstream::Status tierstream_status_ = (expr);        \
    if (!tierstream_status_.ok()) return tierstream_status_; \
  } while (false)

// Evaluates `rexpr` (a Result<T>); returns its Status from the enclosing
// function if it holds none, else moves its value into `lhs` (a declaration
// such as `auto x` or an existing variable). One statement; not usable as
// the body of an unbraced if.
#define ASSIGN_OR_RETURN(lhs, rexpr)                                                              \
  TIERSTREAM_ASSIGN_OR_RETURN_IMPL_(TIERSTREAM_STATUS_CONCAT_(tierstream_result_, __LINE__), lhs, \
                                    rexpr)
#define TIERSTREAM_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                      \
  if (!result.ok()) return std::move(result).error();         \
  lhs = std::move(result).value()

#endif  // TIERSTREAM_COMMON_STATUS_H_
