// PageReserve: large blocks of memory made ready ahead of need, and given
// back, on a background thread.
//
// The first write to a page of fresh memory faults, and on a virtual machine
// a fault can cost 10 µs or more (measured: 11-13 µs on the 2-core VMs this
// is developed on). A hash table that grows into a new 100 MB array fills it
// in random order, so its first few thousand inserts each fault two or three
// pages: tens of milliseconds during which the shard acknowledges nothing.
// Unmapping the old array costs 10-20 ms more. A thread that owns such a
// table asks for its next array early (Prepare); a background thread maps it
// and writes every page, so that the table later gets memory that no longer
// faults, and unmaps freed arrays, so that freeing costs the owner nothing.
//
// Blocks below kLarge come from the ordinary heap and are not handled here.
// Thread safety: a PageReserve is confined to its owner's thread (it hands
// work to the background thread internally); Free may be called from any.
#ifndef TIERSTREAM_COMMON_PAGE_RESERVE_H_
#define TIERSTREAM_COMMON_PAGE_RESERVE_H_

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace tierstream {

class PageReserve {
 public:
  // Allocations from this size up are mapped (and unmapped) whole.
  static constexpr size_t kLarge = size_t{1} << 20;

  PageReserve() = default;
  ~PageReserve();
  PageReserve(const PageReserve&) = delete;
  PageReserve& operator=(const PageReserve&) = delete;

  // Starts making a block of at least `bytes` ready in the background,
  // unless one that large is ready or being made. Does not wait.
  void Prepare(size_t bytes);

  // `bytes` (>= kLarge) of zeroed memory: the prepared block if it is ready
  // and large enough (its unused tail is given back), else a fresh mapping.
  // Never returns null (throws std::bad_alloc, as operator new does).
  void* Allocate(size_t bytes);

  // Gives back what Allocate returned for `bytes`, in the background.
  static void Free(void* p, size_t bytes);

  // Whether a prepared block is ready to be handed out.
  bool ready() const;

  // Blocks handed out ready, and blocks mapped on the spot (for tests).
  size_t prepared_hits() const { return hits_; }
  size_t misses() const { return misses_; }

 private:
  struct Block;
  // Unmaps `block` now if ready, else has its maker unmap it when done.
  static void GiveUp(Block* block);

  std::shared_ptr<Block> pending_;  // being made or ready
  size_t hits_ = 0;
  size_t misses_ = 0;
};

// A std allocator for hash tables and the like: allocations of at least
// PageReserve::kLarge bytes go through `reserve` (may be null: then they are
// mapped directly, still unmapped in the background), smaller ones through
// operator new. Copies share the reserve; a container moved or swapped takes
// its allocator along. Any instance frees what any other allocated (they
// compare equal).
template <typename T>
class ReserveAllocator {
 public:
  using value_type = T;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::true_type;

  ReserveAllocator() = default;
  explicit ReserveAllocator(PageReserve* reserve) : reserve_(reserve) {}
  template <typename U>
  ReserveAllocator(const ReserveAllocator<U>& o) : reserve_(o.reserve()) {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < PageReserve::kLarge) {
      return static_cast<T*>(::operator new (bytes, std::align_val_t{alignof(T)}));
    }
    static_assert(alignof(T) <= 4096, "mapped blocks are page-aligned");
    if (reserve_ != nullptr) return static_cast<T*>(reserve_->Allocate(bytes));
    PageReserve direct;
    return static_cast<T*>(direct.Allocate(bytes));
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < PageReserve::kLarge) {
      ::operator delete (p, std::align_val_t{alignof(T)});
    } else {
      PageReserve::Free(p, bytes);
    }
  }

  PageReserve* reserve() const { return reserve_; }
  friend bool operator==(const ReserveAllocator&, const ReserveAllocator&) { return true; }

 private:
  PageReserve* reserve_ = nullptr;
};

}  // namespace tierstream

#endif  // TIERSTREAM_COMMON_PAGE_RESERVE_H_
