"""swell.engines."""
