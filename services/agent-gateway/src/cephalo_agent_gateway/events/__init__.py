"""Events out (through the outbox) and commands in (through the inbox)."""
