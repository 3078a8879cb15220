// Arena: a bump allocator for the decoded strings of one batch of events.
//
// Bytes handed out stay valid and unmoved until the Arena is destroyed; there
// is no per-allocation free. Thread safety: confined.
#ifndef TIERSTREAM_COMMON_ARENA_H_
#define TIERSTREAM_COMMON_ARENA_H_

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace tierstream {

class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Copies `s` into the arena and returns a view of the copy.
  std::string_view Copy(std::string_view s) {
    if (s.empty()) return {};
    char* p = Allocate(s.size());
    std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
  }

  char* Allocate(size_t n) {
    if (n > remaining_) NewBlock(n);
    char* p = next_;
    next_ += n;
    remaining_ -= n;
    return p;
  }

  size_t MemoryUsage() const { return allocated_; }

 private:
  void NewBlock(size_t at_least) {
    size_t size = at_least > kBlockSize / 4 ? at_least : kBlockSize;
    blocks_.push_back(std::make_unique<char[]>(size));
    next_ = blocks_.back().get();
    remaining_ = size;
    allocated_ += size;
  }

  static constexpr size_t kBlockSize = 64 * 1024;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;
  size_t remaining_ = 0;
  size_t allocated_ = 0;
};

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_ARENA_H_
