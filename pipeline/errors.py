"""Domain errors. The CLI turns each into a one-line message and an exit code."""

from __future__ import annotations


class StoryclustError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: object) -> None:
        """Let each subclass name its exit code in its header; without one it inherits its parent's."""
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code


class ConfigError(StoryclustError, exit_code=2):
    """The config file is missing, malformed or holds an invalid value."""


class InputError(StoryclustError, exit_code=2):
    """An input path is missing or unreadable, or its format is unknown."""


class StoreError(StoryclustError):
    """The database cannot be opened or is not a storyclust database."""


class LockedError(StoryclustError, exit_code=75):
    """Another run holds the database; cron should simply try again later (EX_TEMPFAIL)."""


class NotFoundError(StoryclustError):
    """A story or file named by the user does not exist."""


class OutputError(StoryclustError, exit_code=2):
    """An output path the user named cannot be written (a file in the way, no permission): like a bad input path."""


class ModelError(StoryclustError):
    """The embedding model's files are missing or do not match their pinned hashes."""


class EngineError(StoryclustError):
    """The Ray engine is missing, or its cluster cannot be reached or fails."""
