"""Package branch.logs."""
