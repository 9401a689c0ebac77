"""Allow ``python -m riskreg``."""

from riskreg.cli import run

run()
