"""swell.loadgen: the load generator behind `swell bench`, usable in-process from asyncio code.

`await runner.run(options.Options(url=..., pattern="black-friday", duration_s=600))` gives a
Result with per-request records and a summary; `export` and `charts` write JSON, CSV and HTML.
"""
