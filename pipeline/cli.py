"""`storyclust`: a thin command line over the pipeline library.

Exit codes: 0 success (rejected records included), 1 runtime error, 2 bad usage, config or input path,
75 the database is locked by another run (cron: try again later).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pipeline.config import ENGINES, FORMATS, Config, load_config
from pipeline.errors import StoryclustError

if TYPE_CHECKING:
    from pipeline.store import Store

_Command = TypeVar("_Command", bound=Callable[..., Any])

_SHOWN_WARNINGS = 10
DB_HELP = "DuckDB file (default: store.db in the config, data/storyclust.duckdb)."


def _fail(problem: StoryclustError) -> None:
    click.echo(f"storyclust: error: {problem}", err=True)
    sys.exit(problem.exit_code)


def _db(config: Config, db: str | None) -> str:
    return db or config.store.db


def _store_options(config_help: str = "TOML config, for store.db.") -> Callable[[_Command], _Command]:
    """--db and --config, as every command over an existing database takes them."""

    def decorate(command: _Command) -> _Command:
        command = click.option("--config", "config_path", type=click.Path(dir_okay=False), help=config_help)(command)
        return click.option("--db", help=DB_HELP)(command)

    return decorate


def _read_store(db: str | None, config_path: str | None) -> Store:
    """The database the options name, read-only, waiting for a publishing run as long as the config says."""
    from pipeline.store import Store

    config = load_config(config_path)
    return Store(_db(config, db), read_only=True, wait_seconds=config.store.lock_wait_seconds)


class _Commands(click.Group):
    """Every command's domain errors become one line on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoryclustError as problem:
            _fail(problem)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="storyclust")
def main() -> None:
    """Group news items that report the same event into stories, stored in DuckDB."""


@main.command("run")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="TOML config (see configs/default.toml)."
)
@click.option("--db", help=DB_HELP)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Input format (default: from each file's extension).")
@click.option(
    "--records-path",
    help="Where the records are in a JSON document, as keys: articles, response.docs (default: input.records_path, "
    "else the one array of records found).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON line per stage on stderr (counts, seconds).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no story listing.")
@click.option("--engine", type=click.Choice(ENGINES), help="Where the stages run (default: engine.name, local).")
@click.option(
    "--ray-address", help='Ray cluster to join with --engine ray ("auto", "host:6379"; default: start one here).'
)
def run_command(
    inputs: tuple[str, ...],
    config_path: str | None,
    db: str | None,
    fmt: str | None,
    records_path: str | None,
    log_format: str,
    quiet: bool,
    engine: str | None,
    ray_address: str | None,
) -> None:
    """Read INPUTS (files, folders or globs), cluster new items into stories, store them."""
    from pipeline.runner import run

    config = load_config(config_path).with_engine(engine, ray_address).with_input(records_path)

    def log_stage(stage: str, seconds: float, counts: dict[str, Any]) -> None:
        if log_format == "json":
            click.echo(json.dumps({"stage": stage, "seconds": round(seconds, 3), **counts}), err=True)
        elif not quiet:
            details = ", ".join(f"{k} {v}" for k, v in counts.items())
            click.echo(f"  {stage:<16} {seconds:7.2f}s  {details}", err=True)

    report = run(
        list(inputs),
        config,
        db=_db(config, db),
        fmt=fmt,
        progress=not quiet and log_format == "text",
        log=log_stage,
    )
    summary = (
        f"run {report.run_id}: {report.lines_read} records read, {report.articles_new} new articles, "
        f"{report.already_stored} already stored, {report.duplicates_in_input} duplicates in input, "
        f"{len(report.rejects)} rejected; stories: {report.stories_new} new, {report.stories_updated} updated, "
        f"{report.stories_merged} merged"
    )
    if log_format == "json":
        click.echo(
            json.dumps(
                {
                    "stage": "summary",
                    "run_id": report.run_id,
                    "lines_read": report.lines_read,
                    "articles_new": report.articles_new,
                    "rejected": len(report.rejects),
                    "unreadable_files": len(report.file_rejects),
                    "skipped_files": len(report.skipped_files),
                    "warnings": [f"{w.file}: {w.message}" for w in report.warnings],
                    "waiting": report.waiting,
                    "stories_new": report.stories_new,
                    "stories_updated": report.stories_updated,
                    "stories_merged": report.stories_merged,
                }
            ),
            err=True,
        )
    else:
        click.echo(summary)
        if report.rejects:
            reasons = ", ".join(f"{count} {reason}" for reason, count in report.reject_reasons.most_common())
            click.echo(f"rejected: {reasons} (see `storyclust rejects`)")
        if report.file_rejects or report.skipped_files:
            click.echo(
                f"unreadable files: {len(report.file_rejects)} new, {len(report.skipped_files)} unchanged and not read "
                "again (see `storyclust rejects`)"
            )
        for warning in report.warnings[:_SHOWN_WARNINGS]:
            click.echo(f"warning: {warning.file}: {warning.message}")
        if len(report.warnings) > _SHOWN_WARNINGS:
            click.echo(f"warning: {len(report.warnings) - _SHOWN_WARNINGS} more (see runs.counters)")
        if report.waiting:
            click.echo("run.max_items reached: the rest of the input waits for the next run")
    if not quiet and log_format == "text" and report.articles_new:
        _print_stories(report.db, 20, config.store.lock_wait_seconds)


def _print_stories(db: str, limit: int, wait_seconds: float) -> None:
    from pipeline.store import Store

    with Store(db, read_only=True, wait_seconds=wait_seconds) as store:
        stories = store.top_stories(limit)
    if not stories:
        click.echo("no stories yet")
        return
    click.echo(f"{'story_id':<16} {'size':>5} {'sources':>7}  headline")
    for story in stories:
        click.echo(f"{story.story_id:<16} {story.size:>5} {story.sources or 0:>7}  {story.headline}")


@main.command("stories")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(min=1), help="How many stories.")
@_store_options()
def stories_command(limit: int, db: str | None, config_path: str | None) -> None:
    """List the biggest open stories."""
    config = load_config(config_path)
    _print_stories(_db(config, db), limit, config.store.lock_wait_seconds)


@main.command("show")
@click.argument("story_id")
@_store_options()
def show_command(story_id: str, db: str | None, config_path: str | None) -> None:
    """Show one story (merged ids resolve to the surviving story) with its members and evidence."""
    with _read_store(db, config_path) as store:
        story = store.story(story_id)
    if story.story_id != story_id:
        click.echo(f"{story_id} was merged into {story.story_id}")
    click.echo(f"{story.story_id}  {story.headline}")
    click.echo(
        f"size {story.size}, sources {story.sources or 0}, first seen {story.first_seen or '-'}, "
        f"last seen {story.last_seen or '-'}, {story.status}"
    )
    for m in story.members:
        label = m.title or (m.text[:100] + ("…" if len(m.text) > 100 else ""))
        group = m.near_duplicate_group
        dup = f" dup-of {group}" if group and group != m.article_id else ""
        click.echo(
            f"  {m.article_id:<24} sim {m.similarity if m.similarity is not None else '-':<6} "
            f"{m.source or '-':<24} {str(m.published_at or '-'):<19}{dup}  {label}"
        )


@main.command("eval")
@click.option("--gold", required=True, type=click.Path(dir_okay=False), help='Gold file: {"id", "story"} per line.')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_store_options()
def eval_command(gold: str, as_json: bool, db: str | None, config_path: str | None) -> None:
    """Score the stories in the database against a gold labelling (BCubed, pairwise F1, ARI)."""
    from pipeline.evaluate import read_gold, score

    with _read_store(db, config_path) as store:
        memberships = store.memberships()
    scores = score(memberships, read_gold(gold))
    if as_json:
        click.echo(json.dumps(scores.to_dict()))
        return
    for key, value in scores.to_dict().items():
        click.echo(f"{key:<20} {value}")


_TIME_WORDS = {
    "text": "dates its text names",
    "publication": "its publication date",
    "neighbour": "none of its own: the dates of the dated report most like it, as mentions",
    "none": "none, neutral on time",
}


@main.command("explain")
@click.argument("article_a")
@click.argument("article_b")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_store_options(config_help="TOML config (its cluster rules).")
def explain_command(article_a: str, article_b: str, as_json: bool, db: str | None, config_path: str | None) -> None:
    """Say whether two articles are in one story, and why: each signal and the rule it meets or misses."""
    from pipeline.explain import explain

    config = load_config(config_path)
    result = explain(_db(config, db), article_a, article_b, config)
    if as_json:
        click.echo(json.dumps(result.to_dict(), default=str))
        return
    for view in result.articles:
        click.echo(f"{view.article_id}  [{view.story_id}]  {view.source or '-'}  {view.published_at or 'undated'}")
        click.echo(f"    {view.title}")
        click.echo(
            f"    event dates: {', '.join(view.event_dates) or '-'}  (time evidence: {_TIME_WORDS[view.time_evidence]})"
        )
    for heading, signals in (("pair", result.pair), ("stories", result.story)):
        click.echo(f"{heading}:")
        for signal in signals:
            mark = {True: "met", False: "MISSED", None: ""}[signal.met]
            value = (
                "-" if signal.value is None else f"{signal.value:.3f}" if signal.value < 100 else f"{signal.value:.0f}"
            )
            click.echo(f"  {signal.name:<60} {value:>7}  {mark:<6} {signal.rule}".rstrip())
            if signal.detail:
                click.echo(f"      {signal.detail}")
    click.echo(result.decision)


@main.command("rejects")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(min=1), help="How many records.")
@_store_options()
def rejects_command(limit: int, db: str | None, config_path: str | None) -> None:
    """List input files that could not be read (not retried until they change) and rejected records by reason."""
    with _read_store(db, config_path) as store:
        files = store.file_rejects()
        reasons = store.reject_reasons(limit)
    click.echo(f"unreadable files: {len(files)}")
    for f in files:
        click.echo(
            f"  {f.file}  {f.size} bytes  sha256 {f.sha256[:12]}  since {f.first_seen:%Y-%m-%d %H:%M}, "
            f"last {f.last_seen:%Y-%m-%d %H:%M}"
        )
        click.echo(f"      {f.reason}")
    click.echo(f"rejected records: {sum(r.count for r in reasons)}")
    for r in reasons:
        click.echo(f"  {r.count:>7}  {r.reason}  (e.g. {r.example})")


@main.command("prune")
@click.option("--older-than-days", required=True, type=click.FloatRange(min=0), help="Age of the last item.")
@_store_options()
def prune_command(older_than_days: float, db: str | None, config_path: str | None) -> None:
    """Delete stories (and their articles) whose last item is older than the cutoff."""
    from pipeline.store import prune

    config = load_config(config_path)
    counts = prune(_db(config, db), older_than_days, config.store.lock_wait_seconds, config.store.keep_replaced_hours)
    click.echo(f"pruned {counts.stories} stories and {counts.articles} articles")


@main.command("report")
@click.option(
    "--out", "-o", required=True, type=click.Path(dir_okay=False), help="HTML file to write (its folder is created)."
)
@click.option(
    "--limit", "-n", default=50, show_default=True, type=click.IntRange(min=1), help="How many of the biggest stories."
)
@_store_options()
def report_command(out: str, limit: int, db: str | None, config_path: str | None) -> None:
    """Write one HTML page of the biggest open stories, to read in any browser, on a phone too.

    Each story shows its headline and why it was chosen, its sources, a timeline of its reports and, folded,
    its reports with the evidence: similarity to the other members, date agreement, event dates, and the names
    and numbers it shares with most members or lacks. The page loads nothing from the network: open it
    offline, mail it or publish it as it is.

    \b
    Example:
      storyclust report --db data/news.duckdb --out report.html --limit 20
    """
    from pipeline.report import write_report

    config = load_config(config_path)
    shown = write_report(_db(config, db), out, limit, config.store.lock_wait_seconds)
    click.echo(f"wrote {out}: {shown} {'story' if shown == 1 else 'stories'}")


@main.command("export")
@click.option(
    "--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder to write into (created if missing)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv", "jsonl"]),
    default="parquet",
    show_default=True,
    help="File format; in CSV, list columns are JSON arrays.",
)
@_store_options()
def export_command(out: str, fmt: str, db: str | None, config_path: str | None) -> None:
    """Write the stories and their members as Parquet, CSV or JSON Lines files.

    stories.EXT holds every story, open and merged (merged_into names the survivor), with all its columns.
    story_members.EXT holds one row per member: story, headline, article (title, source, time, url) and the
    evidence (similarities, date agreement, event dates, shared and missing names). Earlier files of the same
    format in the folder are replaced; a failed export leaves them as they were.

    \b
    Example:
      storyclust export --db data/news.duckdb --format csv --out exports/
    """
    from pipeline.export import export

    config = load_config(config_path)
    files = export(_db(config, db), out, fmt, config.store.lock_wait_seconds)
    click.echo("wrote " + ", ".join(f"{file.path}: {file.rows} rows" for file in files))


if __name__ == "__main__":
    main()
