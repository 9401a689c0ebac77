"""Errors a user can act on; the CLI prints each as one ``Error: ...`` line and exits 1."""


class RiskregError(Exception):
    """Base class for every error caused by user input, files or the database state."""


class NotFound(RiskregError):
    """A named object (risk, control, pilot, stage) does not exist."""


class InvalidInput(RiskregError):
    """A value given on the command line or in a file is not acceptable."""


class ConfigError(RiskregError):
    """The configuration file ``riskreg.toml`` cannot be read or is invalid."""


class StaleVersion(RiskregError):
    """A change was based on an older version of an object than the one stored."""


class SchemaBehind(RiskregError):
    """The database schema is older than this riskreg; ``riskreg db upgrade`` fixes it."""


class DatabaseUnavailable(RiskregError):
    """The database cannot be opened, is locked beyond the timeout, or went away."""


class ProtocolError(RiskregError):
    """A pilot protocol file is invalid; the message names the file and the key path."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "invalid protocol"
        more = len(self.problems) - 1
        super().__init__(
            first if more == 0 else f"{first} (and {more} more problem{'s' if more > 1 else ''})"
        )


class DataFileError(RiskregError):
    """A CSV data file has rejected rows; nothing was imported."""
