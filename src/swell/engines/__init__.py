"""Performance models of inference engines, in virtual time (no clock, no I/O).

`llm.Replica` models a vLLM-like continuous-batching replica, `fixed.Service` a classic-model
server with N workers; `presets` and `calibration` hold and fit their numbers. The simulator
runs them on virtual time and the simulated servers run the very same models on wall time.
"""
