"""What api-gateway announces (through the outbox); it consumes nothing yet."""
