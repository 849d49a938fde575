"""swell.workload: arrival patterns, request shapes and traces, pure and seeded.

`spec.parse("black-friday")` gives a workload; `arrivals.collect(w, seed=0, horizon_s=600)` its
arrivals. Used by the load generator (`swell bench`) and by the simulator alike.
"""
