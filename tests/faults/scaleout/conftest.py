"""The scale-out test's helpers (this folder) and the agent swarm (tests/bench) importable."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parents[1] / "bench"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
