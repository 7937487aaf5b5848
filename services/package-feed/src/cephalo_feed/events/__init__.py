"""Events this service announces (through the outbox); it consumes none."""
