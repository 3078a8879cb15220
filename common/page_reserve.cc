#include "common/page_reserve.h"

#include <sys/mman.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <thread>
#include <utility>

#include "common/mutex.h"
#include "common/thread_name.h"

namespace tierstream {

namespace {

size_t PageSize() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

size_t RoundUp(size_t bytes) { return (bytes + PageSize() - 1) & ~(PageSize() - 1); }

// Null when the mapping fails.
void* Map(size_t bytes, bool populate) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// Writes a byte of every page. MAP_POPULATE alone is not enough on a
// virtual machine that shadows the guest's page tables: the first access
// still faults (measured: 5.6 µs a page after populating, 0.04 µs after this).
void Touch(void* p, size_t bytes) {
  volatile char* c = static_cast<volatile char*>(p);
  for (size_t i = 0; i < bytes; i += PageSize()) c[i] = 0;
}

// The one background thread. Never destroyed: it may be handed work until
// the process exits.
class Background {
 public:
  static Background& Get() {
    static Background* const background = new Background;
    return *background;
  }

  void Post(std::function<void()> job) {
    MutexLock lock(&mu_);
    jobs_.push_back(std::move(job));
    cv_.Signal();
  }

 private:
  Background() {
    std::thread([this] {
      NameThisThread("page-reserve");
      Loop();
    }).detach();
  }

  void Loop() {
    for (;;) {
      std::function<void()> job;
      {
        MutexLock lock(&mu_);
        while (jobs_.empty()) cv_.Wait();
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  Mutex mu_;
  CondVar cv_{&mu_};
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

struct PageReserve::Block {
  explicit Block(size_t n) : bytes(n) {}
  const size_t bytes;
  Mutex mu;
  void* p ABSL_GUARDED_BY(mu) = nullptr;
  bool ready ABSL_GUARDED_BY(mu) = false;      // p is mapped and touched
  bool abandoned ABSL_GUARDED_BY(mu) = false;  // nobody will take it
};

void PageReserve::GiveUp(Block* block) {
  MutexLock lock(&block->mu);
  if (block->ready) {
    Free(std::exchange(block->p, nullptr), block->bytes);
    block->ready = false;
  } else {
    block->abandoned = true;  // its maker unmaps it
  }
}

PageReserve::~PageReserve() {
  if (pending_ != nullptr) GiveUp(pending_.get());
}

void PageReserve::Prepare(size_t bytes) {
  bytes = RoundUp(bytes);
  if (pending_ != nullptr) {
    if (pending_->bytes >= bytes) return;
    GiveUp(pending_.get());  // too small: given up for a larger one
  }
  pending_ = std::make_shared<Block>(bytes);
  Background::Get().Post([block = pending_] {
    void* p = Map(block->bytes, /*populate=*/true);
    if (p != nullptr) Touch(p, block->bytes);
    MutexLock lock(&block->mu);
    if (block->abandoned) {
      if (p != nullptr) munmap(p, block->bytes);
    } else {
      block->p = p;
      block->ready = p != nullptr;
    }
  });
}

bool PageReserve::ready() const {
  if (pending_ == nullptr) return false;
  MutexLock lock(&pending_->mu);
  return pending_->ready;
}

void* PageReserve::Allocate(size_t bytes) {
  const size_t size = RoundUp(bytes);
  if (pending_ != nullptr) {
    void* p = nullptr;
    {
      MutexLock lock(&pending_->mu);
      if (pending_->ready && pending_->bytes >= size) {
        p = std::exchange(pending_->p, nullptr);
        pending_->ready = false;
      }
    }
    if (p != nullptr) {
      if (pending_->bytes > size) Free(static_cast<char*>(p) + size, pending_->bytes - size);
      pending_.reset();
      ++hits_;
      return p;
    }
  }
  ++misses_;
  void* p = Map(size, /*populate=*/false);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void PageReserve::Free(void* p, size_t bytes) {
  if (p == nullptr) return;
  Background::Get().Post([p, size = RoundUp(bytes)] { munmap(p, size); });
}

}  // namespace tierstream
