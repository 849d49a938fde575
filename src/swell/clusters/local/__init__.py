"""swell.clusters.local."""
