"""The FastAPI app every service is built from: probes, metrics, problems, request ids."""
