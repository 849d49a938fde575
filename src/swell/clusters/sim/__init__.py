"""swell.clusters.sim."""
