"""Allow ``python -m riskreg``."""

from riskreg.cli import main

main()
