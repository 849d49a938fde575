"""swell.clusters.sim: a simulated GPU cluster in virtual time, driven by a small event loop.

events (the loop), nodes (pools, provisioning, node autoscaler, billing), replicas (lifecycle on
the engine models), router, emit (vLLM metrics into the controller's windows), cluster (all of it
together), outcomes (results), oracle (the lower bound on GPU-hours), report (HTML).
"""
