"""swell.report: self-contained HTML reports with matplotlib figures inlined.

`html.write(path, title, sections)` writes one page; `plots.time_series(...)` draws the usual
figures. Used by `swell bench`, the simulator and the demo.
"""
