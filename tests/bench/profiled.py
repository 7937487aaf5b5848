"""Run a module under cProfile switched by signals: SIGUSR1 starts, SIGUSR2 stops and dumps.

    python tests/bench/profiled.py STATS_FILE MODULE [ARGS...]

`bench_agents.py --profile` runs agent-gateway this way so that only the dispatch is
profiled (registration and connection are not), and the stats are written even though the
server ends on a signal. The clock is the process's CPU time, not the wall: on a shared
machine the wall clock counts the time other processes held the cores.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
import time
from types import FrameType


def main() -> None:
    stats_file, module, *arguments = sys.argv[1:]
    profiler = cProfile.Profile(time.process_time)

    def start(signum: int, frame: FrameType | None) -> None:
        profiler.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(stats_file)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
