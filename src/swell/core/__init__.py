"""swell.core."""
