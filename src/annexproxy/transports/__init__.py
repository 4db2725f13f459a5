"""Package transports."""
