"""swell.runtime: wires the control loop to a cluster and a metrics source, one module per place (local, sim, kubernetes)."""
