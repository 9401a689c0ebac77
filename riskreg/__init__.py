"""riskreg: a two-sided risk register and staged pilot analysis for co-produced public services."""

__version__ = "0.1.0"
