"""swell.core.policies."""
