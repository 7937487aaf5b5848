"""The orchestrator's rules: plain Python over repositories, no FastAPI, no HTTP."""
