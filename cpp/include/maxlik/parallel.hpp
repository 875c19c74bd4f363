// The one parallel-for of maxlik.
//
//   parallel_for(n_tasks, fn)   calls fn(task) for every task in [0, n_tasks)
//                               on a persistent pool; returns when all are done
//                               and rethrows the first exception a task threw.
//
// Determinism contract: callers split work into tasks that do not depend on the
// thread count (fixed-size row blocks, see kRowBlock), write each task's result
// into its own slot, and merge the slots in task order afterwards. Then 1 and
// N threads give bit-identical results.
//
// Re-entrancy: a parallel_for issued from inside a task, or while another
// Python thread owns the pool, runs serially on the calling thread (same
// results, by the contract above).
//
// Cancellation: between tasks the *calling* thread polls an optional hook
// (set_interrupt_check; the bindings install one that asks Python whether
// Ctrl-C arrived) at most every kPollInterval. When it returns true no further
// tasks are started, the running ones finish, and parallel_for throws
// maxlik::interrupted. Results of completed calls are unaffected.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__linux__)
#include <sched.h>
#include <unistd.h>
#endif

namespace maxlik {

// Rows per block. Fixed, never derived from the thread count.
inline constexpr std::size_t kRowBlock = 512;

inline std::size_t n_blocks(std::size_t n, std::size_t block = kRowBlock) {
  return (n + block - 1) / block;
}

// Thrown by parallel_for when the interrupt hook asked to stop.
struct interrupted : std::exception {
  const char* what() const noexcept override { return "maxlik: interrupted"; }
};

using interrupt_check_fn = bool (*)();

namespace detail {

inline std::atomic<interrupt_check_fn>& interrupt_hook() {
  static std::atomic<interrupt_check_fn> hook{nullptr};
  return hook;
}

// Polls the hook at most every kPollInterval; cheap (one clock read) otherwise.
class InterruptPoll {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{20};
  InterruptPoll() : fn_(interrupt_hook().load(std::memory_order_relaxed)),
                    next_(std::chrono::steady_clock::now() + kPollInterval) {}
  bool operator()() {
    if (fn_ == nullptr) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_) return false;
    next_ = now + kPollInterval;
    return fn_();
  }

 private:
  interrupt_check_fn fn_;
  std::chrono::steady_clock::time_point next_;
};

inline int default_num_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int c = CPU_COUNT(&set);
    if (c > 0) return c;
  }
#endif
  unsigned h = std::thread::hardware_concurrency();
  return h ? static_cast<int>(h) : 1;
}

class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool* pool = new ThreadPool();  // leaked on purpose: no teardown races at exit
#if defined(__linux__)
    // After fork() the worker threads do not exist in the child: start afresh.
    if (pool->pid_ != getpid()) pool = new ThreadPool();
#endif
    return *pool;
  }

  int num_threads() const { return n_threads_.load(); }
  void set_num_threads(int n) { n_threads_.store(std::max(1, n)); }

  template <class F> void run(std::size_t n_tasks, F& fn) {
    if (n_tasks == 0) return;
    const int want = static_cast<int>(std::min<std::size_t>(n_tasks, static_cast<std::size_t>(num_threads())));
    std::unique_lock<std::mutex> owner(owner_mutex_, std::try_to_lock);
    InterruptPoll poll;
    if (want <= 1 || in_worker() || !owner.owns_lock()) {
      for (std::size_t i = 0; i < n_tasks; ++i) {
        if (i && poll()) throw interrupted();
        fn(i);
      }
      return;
    }
    ensure_workers(want - 1);
    Job job;
    job.n_tasks = n_tasks;
    job.ctx = &fn;
    job.call = [](void* ctx, std::size_t i) { (*static_cast<F*>(ctx))(i); };
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &job;
      job.active = want - 1;
      ++generation_;
      n_wanted_ = want - 1;
    }
    cv_.notify_all();
    const bool stopped = work(job, &poll);  // the calling thread takes part
    {
      std::unique_lock<std::mutex> lk(m_);
      done_cv_.wait(lk, [&] { return job.active == 0; });
      job_ = nullptr;
    }
    if (job.error) std::rethrow_exception(job.error);
    if (stopped) throw interrupted();
  }

 private:
  struct Job {
    std::size_t n_tasks = 0;
    std::atomic<std::size_t> next{0};
    void* ctx = nullptr;
    void (*call)(void*, std::size_t) = nullptr;
    int active = 0;  // workers still attached (guarded by m_)
    std::mutex err_m;
    std::exception_ptr error;
  };

  ThreadPool() : n_threads_(default_num_threads()) {
#if defined(__linux__)
    pid_ = getpid();
#endif
  }

  static bool& in_worker() {
    thread_local bool flag = false;
    return flag;
  }

  // Returns true if `poll` (the calling thread's interrupt check) stopped the job.
  static bool work(Job& job, InterruptPoll* poll = nullptr) {
    bool& flag = in_worker();
    const bool prev = flag;
    flag = true;
    bool stopped = false;
    for (;;) {
      if (poll != nullptr && (*poll)()) {
        job.next.store(job.n_tasks);  // hand out no more tasks
        stopped = true;
        break;
      }
      std::size_t i = job.next.fetch_add(1);
      if (i >= job.n_tasks) break;
      try {
        job.call(job.ctx, i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(job.err_m);
        if (!job.error) job.error = std::current_exception();
        job.next.store(job.n_tasks);  // stop handing out tasks
      }
    }
    flag = prev;
    return stopped;
  }

  void ensure_workers(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      int id = static_cast<int>(workers_.size());
      workers_.emplace_back([this, id] { worker_loop(id); });
      workers_.back().detach();
    }
  }

  void worker_loop(int id) {
    std::size_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (id >= n_wanted_ || job_ == nullptr) continue;
        job = job_;
      }
      work(*job);
      {
        std::lock_guard<std::mutex> lk(m_);
        if (--job->active == 0) done_cv_.notify_all();
      }
    }
  }

  std::atomic<int> n_threads_;
  std::mutex owner_mutex_;  // one parallel job at a time; others run serially
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  Job* job_ = nullptr;
  std::size_t generation_ = 0;
  int n_wanted_ = 0;
  std::vector<std::thread> workers_;
#if defined(__linux__)
  pid_t pid_ = 0;
#endif
};

}  // namespace detail

// Install (or clear with nullptr) the hook polled by parallel_for's calling thread.
inline void set_interrupt_check(interrupt_check_fn fn) { detail::interrupt_hook().store(fn); }

// Asks the hook now (not rate-limited like parallel_for's polls) and throws
// interrupted if it says so: for a caller about to publish a finished result
// (an all-or-nothing commit), so that an interrupt that arrived after the last
// poll still leaves the destination untouched.
inline void check_interrupt() {
  const interrupt_check_fn fn = detail::interrupt_hook().load(std::memory_order_relaxed);
  if (fn != nullptr && fn()) throw interrupted();
}

inline int get_num_threads() { return detail::ThreadPool::instance().num_threads(); }
inline void set_num_threads(int n) { detail::ThreadPool::instance().set_num_threads(n); }

template <class F> inline void parallel_for(std::size_t n_tasks, F&& fn) {
  detail::ThreadPool::instance().run(n_tasks, fn);
}

// Convenience: parallel over fixed-size row blocks; fn(block, row_begin, row_end).
template <class F> inline void parallel_for_blocks(std::size_t n_rows, std::size_t block, F&& fn) {
  const std::size_t nb = n_blocks(n_rows, block);
  auto task = [&](std::size_t b) {
    const std::size_t r0 = b * block;
    fn(b, r0, std::min(n_rows, r0 + block));
  };
  detail::ThreadPool::instance().run(nb, task);
}

}  // namespace maxlik
