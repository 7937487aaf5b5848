"""Talking to the services behind the gateway over internal HTTP."""
