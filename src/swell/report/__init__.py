"""swell.report."""
