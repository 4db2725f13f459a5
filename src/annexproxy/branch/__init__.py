"""Package branch."""
