"""Domain errors. The CLI turns each into a one-line message and an exit code."""

from __future__ import annotations


class StoryclustError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 1


class ConfigError(StoryclustError):
    """The config file is missing, malformed or holds an invalid value."""

    exit_code = 2


class InputError(StoryclustError):
    """An input path is missing or unreadable, or its format is unknown."""

    exit_code = 2


class StoreError(StoryclustError):
    """The database cannot be opened or is not a storyclust database."""

    exit_code = 1


class LockedError(StoryclustError):
    """Another run holds the database; cron should simply try again later (EX_TEMPFAIL)."""

    exit_code = 75


class NotFoundError(StoryclustError):
    """A story or file named by the user does not exist."""

    exit_code = 1


class OutputError(StoryclustError):
    """An output path the user named cannot be written (a file in the way, no permission): like a bad input path."""

    exit_code = 2


class ModelError(StoryclustError):
    """The embedding model's files are missing or do not match their pinned hashes."""

    exit_code = 1


class EngineError(StoryclustError):
    """The Ray engine is missing, or its cluster cannot be reached or fails."""

    exit_code = 1
