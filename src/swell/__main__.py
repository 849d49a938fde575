"""`python -m swell` runs the `swell` command."""

from swell.cli.main import main

main()
