"""The rules of machines and script runs: plain Python, no FastAPI."""
