"""API schemas: request bodies (`extra="forbid"`) and read models."""
