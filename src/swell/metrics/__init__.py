"""swell.metrics: scraping Prometheus text, the embedded signal source, Prometheus's HTTP API."""
