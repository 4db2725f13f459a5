"""Package p2p."""
