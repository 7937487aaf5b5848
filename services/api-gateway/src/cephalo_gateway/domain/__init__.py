"""api-gateway rules: plain Python, no FastAPI, no network."""
