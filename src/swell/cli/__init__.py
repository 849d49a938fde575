"""swell.cli."""
