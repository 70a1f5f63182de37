"""Errors the CLI turns into one readable line and a non-zero exit."""


class BacklineError(Exception):
    """An expected failure with a message meant for a person."""


class DatabaseUnavailable(BacklineError):
    """The configured database cannot be reached."""


class MigrationError(BacklineError):
    """A migration could not be applied or the history does not match the folder."""
