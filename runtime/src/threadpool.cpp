//===- threadpool.cpp - persistent workers for the CPU kernels ------------===//
//
// Protocol. The caller writes the job fields, resets done_, then publishes
// the job by storing (generation, number of chunks) into work_. Every
// thread, the caller included, claims a chunk by decrementing the count in
// work_ with a compare-exchange, and counts finished chunks in done_; the
// caller returns once done_ reaches the number of chunks. Whether chunks
// are left is read from work_ itself, never from the job fields: a claim
// that succeeds saw this generation with chunks left, so the job is still
// running and its fields are stable. A worker that sees a generation late
// finds no chunk left, or a newer generation in work_, and does nothing.
//
// Sleeping. An idle worker polls work_ for spinMicros, then registers in
// sleepers_ and waits on wake_. The caller stores work_ and then reads
// sleepers_ (both sequentially consistent): either it sees the sleeper and
// notifies under the mutex, or the sleeper's own check of work_, ordered
// after its registration, sees the new generation.
//
//===----------------------------------------------------------------------===//

#include "threadpool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KILN_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define KILN_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define KILN_CPU_RELAX() ((void)0)
#endif

namespace kiln {
namespace {

/// The pool whose job this thread is running, if any: a parallelFor from
/// inside a job runs inline.
thread_local const ThreadPool *tlsRunning = nullptr;

uint32_t generationOf(uint64_t work) {
  return static_cast<uint32_t>(work >> 32);
}
uint32_t remainingOf(uint64_t work) { return static_cast<uint32_t>(work); }

} // namespace

ThreadPool::ThreadPool(int numThreads, int spinMicros)
    : numThreads_(numThreads), spinMicros_(spinMicros < 0 ? 0 : spinMicros) {
  if (numThreads_ <= 0) {
    unsigned hw = std::thread::hardware_concurrency();
    numThreads_ = hw == 0 ? 1 : static_cast<int>(hw);
  }
  workers_.reserve(numThreads_ - 1);
  try {
    for (int i = 1; i < numThreads_; ++i)
      workers_.emplace_back([this] { workerLoop(); });
  } catch (...) {
    stop_.store(true);
    {
      std::lock_guard<std::mutex> lock(sleepMutex_);
      wake_.notify_all();
    }
    for (std::thread &t : workers_)
      t.join();
    throw;
  }
}

ThreadPool::~ThreadPool() {
  // Wait out a job another thread may still be running.
  std::lock_guard<std::mutex> call(callMutex_);
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    wake_.notify_all();
  }
  for (std::thread &t : workers_)
    t.join();
}

void ThreadPool::runChunks(uint32_t generation) noexcept {
  uint64_t w = work_.load(std::memory_order_acquire);
  for (;;) {
    if (generationOf(w) != generation || remainingOf(w) == 0)
      return;
    if (!work_.compare_exchange_weak(w, w - 1, std::memory_order_acquire,
                                     std::memory_order_acquire))
      continue;
    // Claimed: the job is unfinished, so its fields are the ones published
    // with this generation and stay put until the chunk is done.
    int64_t index = numChunks_ - remainingOf(w);
    int64_t begin = index * chunk_;
    int64_t end = begin + chunk_ < n_ ? begin + chunk_ : n_;
    fn_(ctx_, begin, end);
    done_.fetch_add(1, std::memory_order_release);
    w = work_.load(std::memory_order_acquire);
  }
}

void ThreadPool::workerLoop() noexcept {
  tlsRunning = this;
  // Generation 0 is the state before the first job; a job published
  // before this thread got here is still joined.
  uint32_t seen = 0;
  for (;;) {
    // Poll for a while: the next job usually comes within microseconds.
    auto spinStart = std::chrono::steady_clock::now();
    auto spinFor = std::chrono::microseconds(spinMicros_);
    bool found = false;
    for (unsigned i = 1;; ++i) {
      if (generationOf(work_.load(std::memory_order_acquire)) != seen ||
          stop_.load(std::memory_order_relaxed)) {
        found = true;
        break;
      }
      KILN_CPU_RELAX();
      if (i % 64 == 0 &&
          std::chrono::steady_clock::now() - spinStart >= spinFor)
        break;
    }
    if (!found) {
      std::unique_lock<std::mutex> lock(sleepMutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] {
        return generationOf(work_.load(std::memory_order_seq_cst)) != seen ||
               stop_.load();
      });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (stop_.load())
      return;
    seen = generationOf(work_.load(std::memory_order_acquire));
    runChunks(seen);
  }
}

void ThreadPool::run(int64_t n, int64_t chunk, RangeFn fn, void *ctx) noexcept {
  if (n <= 0)
    return;
  if (chunk <= 0)
    chunk = (n + numThreads_ - 1) / numThreads_;
  int64_t numChunks = (n + chunk - 1) / chunk;
  // One chunk, one thread, or a nested call: no one to hand work to.
  if (numChunks == 1 || numThreads_ == 1 || tlsRunning != nullptr) {
    fn(ctx, 0, n);
    return;
  }
  std::unique_lock<std::mutex> call(callMutex_, std::try_to_lock);
  if (!call.owns_lock()) {
    fn(ctx, 0, n);
    return;
  }
  // The chunk count lives in 32 bits of work_; grow chunks to fit.
  if (numChunks > UINT32_MAX) {
    chunk = (n + UINT32_MAX - 1) / UINT32_MAX;
    numChunks = (n + chunk - 1) / chunk;
  }

  fn_ = fn;
  ctx_ = ctx;
  n_ = n;
  chunk_ = chunk;
  numChunks_ = numChunks;
  done_.store(0, std::memory_order_relaxed);
  uint32_t generation = generationOf(work_.load(std::memory_order_relaxed)) + 1;
  work_.store((static_cast<uint64_t>(generation) << 32) |
                  static_cast<uint64_t>(numChunks),
              std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    wake_.notify_all();
  }

  tlsRunning = this;
  runChunks(generation);
  tlsRunning = nullptr;

  // Workers still run their last chunks; they are already awake, so poll,
  // yielding now and then in case they share a core with this thread.
  for (unsigned i = 1; done_.load(std::memory_order_acquire) != numChunks;
       ++i) {
    KILN_CPU_RELAX();
    if (i % 1024 == 0)
      std::this_thread::yield();
  }
}

} // namespace kiln
