"""The read stage's last step: keep the records not stored yet, in arrival order, at most `run.max_items`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pipeline.records import FileReject, FileWarning, RawRecord, Reject, content_hash

StoredHashes = Callable[[list[str]], dict[str, str]]  # article ids -> content hash of the stored ones


@dataclass
class Intake:
    """What reading gave: the new records, rejects, and what was counted on the way."""

    records: list[RawRecord] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    file_rejects: list[FileReject] = field(default_factory=list)
    warnings: list[FileWarning] = field(default_factory=list)
    lines_read: int = 0
    already_stored: int = 0
    duplicates_in_input: int = 0
    waiting: bool = False  # max_items was reached: more new input waits for the next run


def take_new(
    stream: Iterable[RawRecord | Reject | FileReject | FileWarning], stored: StoredHashes, max_items: int
) -> Intake:
    """Read the stream in arrival order and keep the records not stored yet, at most `max_items` of them.

    An id is compared with the stored one before any cleaning (both come from the raw record), so a file
    read again by the next run costs little. Once `max_items` are taken reading stops: the rest waits for
    the next run (`waiting` says whether some does). An id seen twice is a duplicate (same content) or a
    reject (different content), against the database and within the input alike.
    """
    intake = Intake()
    seen: dict[str, str] = {}  # ids taken this run, with their content hash
    pending: list[RawRecord] = []

    def settle() -> None:
        identities = [identity(record) for record in pending]
        known_hashes = stored(sorted({article_id for article_id, _ in identities}))
        for record, (article_id, digest) in zip(pending, identities, strict=True):
            known = known_hashes.get(article_id, seen.get(article_id))
            if known is None:
                if len(intake.records) >= max_items:
                    intake.waiting = True
                    continue  # read again, and taken, by the next run
                seen[article_id] = digest
                intake.records.append(record)
            elif article_id in known_hashes and known == digest:
                intake.already_stored += 1
            elif known == digest:
                intake.duplicates_in_input += 1
            else:
                where = "already stored" if article_id in known_hashes else "repeated in the input"
                intake.rejects.append(
                    Reject(record.file, record.line, f"id {where} with different content", article_id)
                )
        pending.clear()

    for item in stream:
        intake.lines_read += not isinstance(item, FileReject | FileWarning)
        if isinstance(item, FileReject):
            intake.file_rejects.append(item)
        elif isinstance(item, FileWarning):
            intake.warnings.append(item)
        elif isinstance(item, Reject):
            intake.rejects.append(item)
        else:
            pending.append(item)
            if len(pending) >= 4096:
                settle()
                if len(intake.records) >= max_items:
                    intake.waiting = True
                    break
    settle()
    return intake


def identity(record: RawRecord) -> tuple[str, str]:
    """The article id and content hash a record will have (`normalize_record` gives the same)."""
    digest = content_hash(record.title, record.text)
    return record.id or f"h-{digest[:16]}", digest
