"""swell.metrics."""
