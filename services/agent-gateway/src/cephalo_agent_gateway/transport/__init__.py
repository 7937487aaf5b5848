"""How the gateway reaches agents: polling WebSockets today, listening agents later."""
