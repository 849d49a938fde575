"""swell.api."""
