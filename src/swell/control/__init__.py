"""swell.control."""
