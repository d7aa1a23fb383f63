#include "threads.h"

#include <chrono>
#include <fstream>
#include <set>
#include <string>

namespace pyrnn {

thread_pool::thread_pool(int n_threads) {
    for (int i = 1; i < n_threads; i++) workers_.emplace_back([this] { worker_loop(); });
}

thread_pool::~thread_pool() {
    {
        std::lock_guard<std::mutex> lk(wake_mutex_);
        stop_ = true;
        generation_++;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
}

void thread_pool::do_tasks() {
    for (int i = next_task_.fetch_add(1); i < n_tasks_; i = next_task_.fetch_add(1)) (*fn_)(i);
}

void thread_pool::worker_loop() {
    uint64_t seen = 0;
    for (;;) {
        // spin ~50 µs for the next job, then sleep until notified
        const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
        while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until) {
            std::this_thread::yield();
        }
        if (generation_.load(std::memory_order_acquire) == seen) {
            std::unique_lock<std::mutex> lk(wake_mutex_);
            wake_.wait(lk, [&] { return generation_.load() != seen; });
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        do_tasks();
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void thread_pool::run(int n_tasks, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (workers_.empty() || n_tasks <= 1 || !busy.owns_lock()) {
        for (int i = 0; i < n_tasks; i++) fn(i);
        return;
    }
    fn_ = &fn;
    n_tasks_ = n_tasks;
    next_task_ = 0;
    pending_ = int(workers_.size());
    {
        std::lock_guard<std::mutex> lk(wake_mutex_);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    do_tasks();
    while (pending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    fn_ = nullptr;
}

namespace {
thread_local thread_pool* tl_pool = nullptr;
}

thread_pool* current_pool() { return tl_pool; }

pool_scope::pool_scope(thread_pool* p) : previous(tl_pool) { tl_pool = p; }
pool_scope::~pool_scope() { tl_pool = previous; }

int default_threads() {
#ifdef __linux__
    // distinct (physical id, core id) pairs: SMT siblings share a core and its FMA units
    std::ifstream f("/proc/cpuinfo");
    std::set<std::pair<std::string, std::string>> cores;
    std::string line, phys = "0";
    while (std::getline(f, line)) {
        auto value = [&] { return line.substr(line.find(':') + 1); };
        if (line.rfind("physical id", 0) == 0) phys = value();
        if (line.rfind("core id", 0) == 0) cores.insert({phys, value()});
    }
    if (!cores.empty()) return int(cores.size());
#endif
    const unsigned n = std::thread::hardware_concurrency();
    return n ? int(n) : 1;
}

} // namespace pyrnn
