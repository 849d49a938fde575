"""swell.core: the pure heart — signals, windows, snapshot, decision, policies and node sizing.

Standard library and recipe types only: no I/O, no clock, no randomness (see DESIGN.md).
"""
