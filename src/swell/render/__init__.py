"""swell.render: Kubernetes manifests for a recipe (`swell render`): the workload and what scales it."""
