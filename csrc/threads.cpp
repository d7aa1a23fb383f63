#include "threads.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>

namespace pyrnn {

namespace {
constexpr uint64_t gen_of(uint64_t job) { return job >> 32; }
constexpr int tasks_of(uint64_t job) { return int((job >> 16) & 0xffff); }
constexpr int next_of(uint64_t job) { return int(job & 0xffff); }
} // namespace

thread_pool::thread_pool(int n_threads) {
    for (int i = 1; i < n_threads; i++) workers_.emplace_back([this] { worker_loop(); });
}

thread_pool::~thread_pool() {
    {
        std::lock_guard<std::mutex> lk(wake_mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
}

bool thread_pool::claim_and_run(uint64_t gen) {
    bool ran = false;
    uint64_t job = job_.load(std::memory_order_acquire);
    while (gen_of(job) == gen && next_of(job) < tasks_of(job)) {
        if (!job_.compare_exchange_weak(job, job + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
        // The claim proves the job is live: it cannot end before this task is counted in done_.
        (*fn_.load(std::memory_order_acquire))(next_of(job));
        done_.fetch_add(1, std::memory_order_acq_rel);
        ran = true;
        job = job_.load(std::memory_order_acquire);
    }
    return ran;
}

void thread_pool::worker_loop() {
    uint64_t seen = 0; // the last generation this worker looked at
    for (;;) {
        // Spin ~50 µs for the next job (yielding, so a loaded machine loses little), then sleep.
        const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
        uint64_t gen = gen_of(job_.load(std::memory_order_acquire));
        while (gen == seen && !stop_.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < spin_until) {
            std::this_thread::yield();
            gen = gen_of(job_.load(std::memory_order_acquire));
        }
        if (gen == seen) {
            std::unique_lock<std::mutex> lk(wake_mutex_);
            sleepers_.fetch_add(1); // seq_cst, paired with run()'s store of job_ and load of sleepers_
            wake_.wait(lk, [&] { return stop_.load() || gen_of(job_.load()) != seen; });
            sleepers_.fetch_sub(1);
            gen = gen_of(job_.load(std::memory_order_acquire));
        }
        if (stop_.load()) return;
        seen = gen;
        claim_and_run(gen);
    }
}

void thread_pool::run(int n_tasks, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (workers_.empty() || n_tasks <= 1 || !busy.owns_lock()) {
        for (int i = 0; i < n_tasks; i++) fn(i);
        return;
    }
    for (int first = 0; first < n_tasks; first += max_tasks) { // more than max_tasks: in batches
        const int count = std::min(max_tasks, n_tasks - first);
        const std::function<void(int)> batch = [&](int i) { fn(first + i); };
        fn_.store(first == 0 && count == n_tasks ? &fn : &batch, std::memory_order_relaxed);
        done_.store(0, std::memory_order_relaxed);
        const uint64_t gen = ++generation_ & 0xffffffffu;
        job_.store((gen << 32) | (uint64_t(count) << 16)); // seq_cst: publishes fn_ and done_
        if (sleepers_.load() > 0) {
            std::lock_guard<std::mutex> lk(wake_mutex_); // a worker between its check and its wait sees the job
            wake_.notify_all();
        }
        claim_and_run(gen);
        while (done_.load(std::memory_order_acquire) != count) std::this_thread::yield(); // tasks a worker claimed
    }
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
