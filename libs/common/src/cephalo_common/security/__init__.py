"""TLS with pinned self-signed certificates, thumbprints, constant-time comparison."""
