"""swell.clusters.kubernetes."""
