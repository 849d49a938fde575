"""swell: autoscale ML inference services.

One decision loop (read signals -> pure policy -> decision -> cluster.apply) runs on one
machine (processes behind a gateway), in a discrete-event simulator, and on Kubernetes.
See docs/architecture.md for the layers.
"""

__version__ = "0.1.0"
