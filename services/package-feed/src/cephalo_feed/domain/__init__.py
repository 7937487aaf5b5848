"""package-feed rules: plain Python, no FastAPI."""
