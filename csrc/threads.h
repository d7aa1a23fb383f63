// threads.h — a small persistent thread pool for splitting matrix work.
//
//   thread_pool pool(2);                                   // the caller + 1 worker
//   pool.run(n_tasks, [&](int task) { work(task); });      // returns when every task is done
//
// Workers spin briefly between jobs (a decode step issues hundreds of small jobs per token, and a
// sleeping thread takes ~10 µs to wake) and then sleep. Tasks are claimed one by one from a counter
// and run() returns as soon as every task is done — it never waits for a worker that has not woken
// (on a loaded machine the caller simply does the work itself), so n threads are never slower than
// one by more than the cost of a claim. One job runs at a time: a caller that finds the pool busy
// (another Python thread using the same model) runs its tasks itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pyrnn {

class thread_pool {
  public:
    explicit thread_pool(int n_threads); // n_threads ≥ 1, counting the caller
    ~thread_pool();
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    int size() const { return int(workers_.size()) + 1; }
    void run(int n_tasks, const std::function<void(int)>& fn);

  private:
    void worker_loop();
    bool claim_and_run(uint64_t gen); // runs tasks of job `gen` until none is left; false if none was

    // One word names the job and hands out its tasks: generation (32 bits) | n_tasks (16) | next (16).
    // A worker claims task `next` by a compare-exchange that also proves the job is still `gen`,
    // so a late worker can never run a task of a job that has ended or take one of the next job
    // with the old count.
    static constexpr int max_tasks = 0xffff;
    std::atomic<uint64_t> job_{0};
    std::atomic<const std::function<void(int)>*> fn_{nullptr};
    std::atomic<int> done_{0}; // tasks of the current job that have finished

    std::vector<std::thread> workers_;
    std::mutex busy_; // held by the caller of run() for the whole job
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    std::atomic<int> sleepers_{0};
    std::atomic<bool> stop_{false};
    uint64_t generation_ = 0; // last job's generation; written only by run()'s caller, under busy_
};

// The pool that matrix products use on this thread (nullptr: run single-threaded). Set for the
// duration of a model call with pool_scope.
thread_pool* current_pool();

struct pool_scope {
    explicit pool_scope(thread_pool* p);
    ~pool_scope();
    thread_pool* previous;
};

// Physical cores if the OS tells us, else logical CPUs; at least 1.
int default_threads();

// The most threads a model takes (Python, C API and CLI check against this one number).
constexpr int max_threads = 1024;

} // namespace pyrnn
