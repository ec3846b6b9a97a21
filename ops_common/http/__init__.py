"""What every HTTP service of the project shares: the JSON error contract, API-key checks, the
error middleware and the health/metrics routes."""
