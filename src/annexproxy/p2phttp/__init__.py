"""Package annexproxy.p2phttp: the P2P-over-HTTP API as pure data (routes, parameters, auth)."""
