// threads.h — a small persistent thread pool for splitting matrix work.
//
//   thread_pool pool(2);                                   // the caller + 1 worker
//   pool.run(n_tasks, [&](int task) { work(task); });      // returns when every task is done
//
// Workers spin briefly between jobs (a decode step issues hundreds of small jobs per token, and a
// sleeping thread takes ~10 µs to wake) and then sleep. One job runs at a time: a caller that
// finds the pool busy (another Python thread using the same model) runs its tasks itself.
#pragma once

#include <atomic>
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
    void do_tasks();

    std::vector<std::thread> workers_;
    std::mutex busy_;           // held by the caller of run() for the whole job
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> next_task_{0};
    std::atomic<int> pending_{0};   // workers still inside the current job
    std::atomic<bool> stop_{false};
    const std::function<void(int)>* fn_ = nullptr;
    int n_tasks_ = 0;
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

} // namespace pyrnn
