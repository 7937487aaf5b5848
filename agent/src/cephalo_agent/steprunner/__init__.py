"""The step runner: what one deployment step does on a target (Calamari's role).

It runs scripts and deploys packages on the machine it runs on, talks back only through its
exit code and service messages on stdout, and depends on nothing but the standard library and
the stdlib-only parts of `cephalo_common.variables` (the template engine, masking, service
messages). So the same code runs inside an agent (`python -m cephalo_agent.steprunner`) and,
bundled as a zipapp by `bundle.py`, on an SSH host that only has Python 3.11+.
"""

from __future__ import annotations

ACTION_VARIABLE = "Cephalo.Action"
EXIT_FAILED = 1
EXIT_BAD_ACTION = 2
