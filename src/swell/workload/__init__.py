"""swell.workload."""
