"""swell.loadgen."""
