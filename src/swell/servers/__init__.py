"""swell.servers."""
