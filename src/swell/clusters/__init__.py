"""swell.clusters."""
