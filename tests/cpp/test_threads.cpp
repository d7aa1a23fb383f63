// test_threads.cpp — the thread pool runs every task of every job exactly once, whatever the
// timing: jobs of 1..300 tasks back to back (workers racing between jobs, a late worker must never
// run a task of a finished job or of the next one), a job above the 16-bit task count (run in
// batches), two callers sharing one pool (the second runs its own tasks), and pools destroyed while
// their workers spin or sleep. Built with -fsanitize=thread it also proves the absence of data races
// (tools/ci_reliability.sh does not do that; run by hand: see docs/RELIABILITY.md).
//
//   test_threads            # exit status 0: every check passed
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "threads.h"

using namespace pyrnn;

namespace {

// Runs `jobs` jobs of varying size on `pool` and checks each task ran exactly once.
void run_jobs(thread_pool& pool, int jobs, int seed, const char* who) {
    std::vector<std::atomic<int>> hits(400);
    for (int j = 0; j < jobs; j++) {
        const int n = 1 + (j * 37 + seed) % 300;
        for (int i = 0; i < n; i++) hits[size_t(i)].store(0);
        pool.run(n, [&](int i) {
            if (i < 0 || i >= n) {
                check(false, std::string(who) + ": task index out of range");
                return;
            }
            hits[size_t(i)].fetch_add(1);
        });
        int bad = 0;
        for (int i = 0; i < n; i++) bad += hits[size_t(i)].load() != 1;
        check(bad == 0, std::string(who) + ": job " + std::to_string(j) + " of " + std::to_string(n) +
                            " tasks: " + std::to_string(bad) + " tasks not run exactly once");
    }
}

} // namespace

int main() {
    for (int threads : {1, 2, 3, 5}) {
        thread_pool pool(threads);
        check(pool.size() == threads, "size() counts the caller");
        run_jobs(pool, 3000, threads, "back-to-back jobs");
        // Let the workers fall asleep, then wake them with a job.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        run_jobs(pool, 50, 7, "after sleep");
    }
    {
        thread_pool pool(3);
        const int n = 70000; // above the 16-bit count: batches
        std::vector<std::atomic<int>> hits(n);
        pool.run(n, [&](int i) { hits[size_t(i)].fetch_add(1); });
        int bad = 0;
        for (int i = 0; i < n; i++) bad += hits[size_t(i)].load() != 1;
        check(bad == 0, "70000-task job: " + std::to_string(bad) + " tasks not run exactly once");
    }
    {
        thread_pool pool(2); // two callers: one gets the pool, the other runs its tasks itself
        std::thread other([&] { run_jobs(pool, 1500, 3, "second caller"); });
        run_jobs(pool, 1500, 11, "first caller");
        other.join();
    }
    for (int i = 0; i < 200; i++) { // destroyed while workers spin (just after a job) or before any job
        thread_pool pool(3);
        if (i % 2) run_jobs(pool, 1, i, "short-lived pool");
    }
    return report("test_threads");
}
