// ChunkedVector: a growable array of T in fixed chunks of 2^kShift elements.
//
// Elements never move (pointers and views into them stay valid while the
// vector lives), and element i is one shift and one mask into a chunk table
// small enough to stay in cache — unlike std::deque, whose 512-byte nodes
// make its map a cache miss of its own once it holds millions of elements.
// Thread safety: confined.
#ifndef TIERSTREAM_COMMON_CHUNKED_VECTOR_H_
#define TIERSTREAM_COMMON_CHUNKED_VECTOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tierstream {

template <typename T, unsigned kShift = 12>
class ChunkedVector {
 public:
  static constexpr size_t kChunk = size_t{1} << kShift;

  T& operator[](size_t i) { return chunks_[i >> kShift][i & (kChunk - 1)]; }
  const T& operator[](size_t i) const { return chunks_[i >> kShift][i & (kChunk - 1)]; }
  size_t size() const { return size_; }

  // Appends a value-initialised element and returns it.
  T& emplace_back() {
    if ((size_ & (kChunk - 1)) == 0 && (size_ >> kShift) == chunks_.size()) {
      chunks_.push_back(std::make_unique<T[]>(kChunk));
    }
    return (*this)[size_++];
  }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  size_t size_ = 0;
};

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_CHUNKED_VECTOR_H_
