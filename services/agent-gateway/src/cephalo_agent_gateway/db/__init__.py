"""Tables, repositories (all SQL) and migrations of the `agent_gateway` schema."""
