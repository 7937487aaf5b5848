"""Entry point: `python -m cephalo_agent`."""

from cephalo_agent.cli import main

raise SystemExit(main())
