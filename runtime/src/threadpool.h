//===- threadpool.h - persistent workers for the CPU kernels ----*- C++ -*-===//
//
// A decode step makes a couple of hundred kernel calls of tens of
// microseconds each, so handing out work has to cost well under a
// microsecond: the workers live as long as the pool, spin for a short while
// after each job (a new job usually follows within microseconds) and only
// then sleep on a condition variable. A call allocates nothing: the job is
// a function pointer plus a context pointer, and chunks are claimed from
// one atomic word that holds both the job's generation and its unclaimed
// chunk count, so a worker that wakes late can never run a chunk of the
// wrong job.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_THREADPOOL_H
#define KILN_RUNTIME_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace kiln {

/// A fixed set of threads that run `parallelFor` jobs. The thread calling
/// parallelFor is one of the pool's numThreads(): it runs chunks too, so a
/// pool of 1 starts no thread and runs everything inline.
///
/// parallelFor may be called from any thread. A call made while the pool is
/// busy with another thread's job, or from inside a job (of any pool), runs
/// inline on the calling thread instead of waiting, so nesting never
/// deadlocks. The functions run must not throw.
class ThreadPool {
public:
  /// How long an idle worker keeps polling for the next job before it
  /// sleeps, when the constructor is not told.
  static constexpr int kDefaultSpinMicros = 100;

  /// Starts `numThreads - 1` workers; `numThreads <= 0` means one thread per
  /// hardware thread. Throws std::system_error when a thread cannot start.
  explicit ThreadPool(int numThreads, int spinMicros = kDefaultSpinMicros);
  /// Waits for the running job, if any, then stops and joins the workers.
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// The number of threads that run a job, the caller included.
  int numThreads() const { return numThreads_; }

  /// Whether kernels run on this pool must compute each row of their
  /// output the same way whatever the number of rows (see
  /// kiln_engine_options::batch_invariant). Set before the first job.
  bool batchInvariant() const { return batchInvariant_; }
  void setBatchInvariant(bool on) { batchInvariant_ = on; }

  /// Calls `fn(begin, end)` on disjoint ranges that together cover [0, n)
  /// and returns when all have run. Ranges hold `chunk` items (the last one
  /// fewer); `chunk <= 0` cuts n into numThreads() near-equal ranges.
  /// Ranges are claimed in increasing order by whichever thread is free, so
  /// a chunk smaller than n / numThreads() balances uneven work.
  template <typename Fn>
  void parallelFor(int64_t n, Fn &&fn, int64_t chunk = 0) {
    using F = std::remove_reference_t<Fn>;
    run(
        n, chunk,
        [](void *ctx, int64_t begin, int64_t end) {
          (*static_cast<F *>(ctx))(begin, end);
        },
        const_cast<void *>(static_cast<const void *>(&fn)));
  }

private:
  using RangeFn = void (*)(void *ctx, int64_t begin, int64_t end);

  void run(int64_t n, int64_t chunk, RangeFn fn, void *ctx) noexcept;
  void workerLoop() noexcept;
  /// Claims and runs chunks of job `generation` until none is left.
  void runChunks(uint32_t generation) noexcept;

  int numThreads_;
  bool batchInvariant_ = false;
  int spinMicros_;
  std::vector<std::thread> workers_;

  // The job. Written by the calling thread only while no chunk of the
  // previous job is running (all are done) and published by the store to
  // work_; read by a worker only after it claimed a chunk.
  RangeFn fn_ = nullptr;
  void *ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 0;
  int64_t numChunks_ = 0;

  /// (generation << 32) | number of chunks not yet claimed. Claiming is a
  /// compare-exchange on the whole word, so it fails once a newer job is
  /// published.
  alignas(64) std::atomic<uint64_t> work_{0};
  /// Chunks of the current job that have finished.
  alignas(64) std::atomic<int64_t> done_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};

  /// Serializes callers; one that finds it taken runs its job inline.
  std::mutex callMutex_;
  /// Guards the sleep of idle workers.
  std::mutex sleepMutex_;
  std::condition_variable wake_;
};

} // namespace kiln

#endif // KILN_RUNTIME_THREADPOOL_H
