"""agent-gateway: deployment targets, their trust material and connections; runs steps on them."""
