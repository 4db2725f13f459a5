"""Package annexproxy.cluster: proxied remotes and clusters behind a gateway."""
