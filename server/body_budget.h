// BodyBudget: the request body bytes held at once across all connections
// (--max-inflight-body-mb), and BodyCharge, one body's share of it.
#ifndef TIERSTREAM_SERVER_BODY_BUDGET_H_
#define TIERSTREAM_SERVER_BODY_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <utility>

namespace tierstream::server {

// A lock-free counter that bodies take shares of and
// give back. Thread-safe.
class BodyBudget {
 public:
  explicit BodyBudget(uint64_t limit) : limit_(limit) {}
  BodyBudget(const BodyBudget&) = delete;
  BodyBudget& operator=(const BodyBudget&) = delete;

  // All of `bytes` or nothing: false when they do not fit under the limit.
  bool Take(uint64_t bytes) {
    uint64_t held = held_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ || held > limit_ - bytes) return false;
    } while (!held_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
    return true;
  }
  void Give(uint64_t bytes) { held_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> held_{0};
};

// One request body's share of the BodyBudget, given back when destroyed or
// released. Movable; confined to its connection's thread.
class BodyCharge {
 public:
  BodyCharge() = default;
  explicit BodyCharge(BodyBudget* budget) : budget_(budget) {}
  BodyCharge(BodyCharge&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  BodyCharge& operator=(BodyCharge&& other) noexcept {
    if (this != &other) {
      Release();
      budget_ = std::exchange(other.budget_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~BodyCharge() { Release(); }

  // Raises the share to `bytes` (nothing to do if it is that large already);
  // false, and nothing taken, when the budget cannot spare the difference
  // (or there is no budget: a body nobody charged must not be read).
  [[nodiscard]] bool GrowTo(uint64_t bytes) {
    if (bytes <= bytes_) return true;
    if (budget_ == nullptr || !budget_->Take(bytes - bytes_)) return false;
    bytes_ = bytes;
    return true;
  }
  void Release() {
    if (budget_ != nullptr && bytes_ > 0) budget_->Give(bytes_);
    bytes_ = 0;
  }

 private:
  BodyBudget* budget_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_BODY_BUDGET_H_
