"""swell.render."""
