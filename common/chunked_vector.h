// ChunkedVector: a growable array of T in fixed chunks of 2^kShift elements.
//
// Elements never move (pointers and views into them stay valid while the
// vector lives), and element i is one shift and one mask into a chunk table
// small enough to stay in cache — unlike std::deque, whose 512-byte nodes
// make its map a cache miss of its own once it holds millions of elements.
// And it never copies: a std::vector that doubles from 16 to 32 MB copies
// the 16 MB into fresh pages, each first write a page fault (10+ µs on a VM),
// 35 ms inside one push_back; a chunk costs its own pages' faults only.
// Thread safety: confined.
#ifndef TIERSTREAM_COMMON_CHUNKED_VECTOR_H_
#define TIERSTREAM_COMMON_CHUNKED_VECTOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace tierstream {

template <typename T, unsigned kShift = 12>
class ChunkedVector {
 public:
  static constexpr size_t kChunk = size_t{1} << kShift;

  ChunkedVector() = default;
  ChunkedVector(ChunkedVector&& o) noexcept
      : chunks_(std::move(o.chunks_)), size_(std::exchange(o.size_, 0)) {}
  ChunkedVector& operator=(ChunkedVector&& o) noexcept {
    chunks_ = std::move(o.chunks_);
    size_ = std::exchange(o.size_, 0);
    return *this;
  }

  T& operator[](size_t i) { return chunks_[i >> kShift][i & (kChunk - 1)]; }
  const T& operator[](size_t i) const { return chunks_[i >> kShift][i & (kChunk - 1)]; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Appends a value-initialised element and returns it.
  T& emplace_back() {
    if ((size_ & (kChunk - 1)) == 0 && (size_ >> kShift) == chunks_.size()) {
      chunks_.push_back(std::make_unique<T[]>(kChunk));
    }
    return (*this)[size_++];
  }
  void push_back(const T& v) { emplace_back() = v; }
  template <typename... Args>
  void emplace_back(Args&&... args) {
    emplace_back() = T(std::forward<Args>(args)...);
  }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }
  // Drops the last element (its chunk stays, for the next).
  void pop_back() { (*this)[--size_] = T(); }
  // Drops the elements from n on (if there are more than n).
  void Truncate(size_t n) {
    while (size_ > n) pop_back();
  }
  void clear() {
    chunks_.clear();
    size_ = 0;
  }
  // Erases the elements for which erase(e) holds; the others keep their order.
  template <typename Pred>
  void EraseIf(Pred erase) {
    size_t kept = 0;
    for (size_t i = 0; i < size_; ++i) {
      if (erase((*this)[i])) continue;
      if (kept != i) (*this)[kept] = std::move((*this)[i]);
      ++kept;
    }
    Truncate(kept);
  }

  class const_iterator {
   public:
    const_iterator(const ChunkedVector* v, size_t i) : v_(v), i_(i) {}
    const T& operator*() const { return (*v_)[i_]; }
    const T* operator->() const { return &(*v_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }

   private:
    const ChunkedVector* v_;
    size_t i_;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  size_t size_ = 0;
};

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_CHUNKED_VECTOR_H_
