"""Threads for the concurrency tests: workers that run while another thread keeps changing something."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_while_switching(workers: list[Callable[[], None]], switch: Callable[[int], None]) -> None:
    """Runs each worker in its own thread while one more thread calls switch(0), switch(1), ... until
    every worker has ended; then raises the first exception any of them raised (an exception in a
    thread would otherwise only be a warning)."""
    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as e:  # handed to the test's thread below
                errors.append(e)
        return run

    def switcher() -> None:
        n = 0
        while not done.is_set():
            switch(n)
            n += 1

    threads = [threading.Thread(target=guarded(w)) for w in workers]
    background = threading.Thread(target=guarded(switcher))
    background.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    background.join()
    if errors:
        raise errors[0]
