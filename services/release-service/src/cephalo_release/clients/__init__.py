"""Other services, over HTTP, as the domain's protocols."""
