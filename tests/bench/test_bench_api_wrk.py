"""bench_api.py reads wrk's report: throughput, percentiles in any unit, errors kept apart."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPORT = """\
Running 15s test @ http://127.0.0.1:8080/api/v1/spaces/default/projects?take=30
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.53ms   10.01ms 210.00ms   90.00%
  Latency Distribution
     50%  812.00us
     75%   25.10ms
     90%   30.00ms
     99%    1.20s
  37012 requests in 15.00s, 55.10MB read
  Socket errors: connect 0, read 1, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:   2467.47
Transfer/sec:      3.67MB
"""


def bench_api() -> ModuleType:
    path = Path(__file__).with_name("bench_api.py")
    spec = importlib.util.spec_from_file_location("bench_api_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_wrk_report_is_read_in_milliseconds_with_errors_apart() -> None:
    rate, p50, p99, non_2xx, lost = bench_api().parse_wrk(REPORT)
    assert rate == 2467.47
    assert p50 == 0.812
    assert p99 == 1200.0
    assert (non_2xx, lost) == (2, 4)


def test_a_clean_run_has_no_errors() -> None:
    lines = REPORT.splitlines()
    clean = "\n".join(line for line in lines if "errors" not in line and "Non-2xx" not in line)
    assert bench_api().parse_wrk(clean)[3:] == (0, 0)
