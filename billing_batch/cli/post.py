"""The post command, and the table and lines that tell what the post tasks (send, sync, charge) did,
after `post` or after billing with --post-tasks."""
from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from billing_batch import pipeline
from billing_batch.cli import terminal
from billing_batch.cli.exits import EXIT_OK, EXIT_REFUSED, EXIT_SET_ASIDE, EXIT_UNUSABLE
from billing_batch.cli.terminal import unusable
from billing_batch.post.records import TASKS, Outcome
from billing_batch.post.tasks import needs_attention, summary
from billing_batch.workspace import Options


def post_command(args, options: Options) -> int:
    result = pipeline.post(options, args.tasks, args.invoice, args.again)
    if unusable(result.report):
        return EXIT_UNUSABLE
    if result.unknown:
        terminal.console.print(Text(f"The ledger has no live invoice {', '.join(result.unknown)}: nothing was done."))
        return EXIT_REFUSED
    show_post(result.outcomes)
    book = pipeline.refresh_book(options)
    if book:
        terminal.console.print(Text(f"Schedules: {book}"))
    return result.exit_code


def show_post(outcomes, earlier: int = 0) -> int:
    """Print what the post tasks did (earlier: how many documents came from earlier commands); 1 when one
    failed or is in doubt."""
    if not outcomes:
        return EXIT_OK
    terminal.console.print(outcome_table(outcomes))
    if earlier:
        documents = len({o.number for o in outcomes})
        terminal.console.print(f"The post tasks took {documents} document(s), {earlier} of them from earlier runs "
                               "(a run that stopped before its tasks, a failure to retry, a generate without them).")
    for line in attention_lines(outcomes):
        terminal.console.print(line)
    return EXIT_SET_ASIDE if any(o.status in ("failed", "in doubt") for o in outcomes) else EXIT_OK


POST_STATUSES = ("done", "outbox", "already done", "not done", "failed", "in doubt")


def outcome_table(outcomes: Sequence[Outcome]) -> Table:
    """Invoices per task and status."""
    counts = summary(outcomes)
    table = Table(title="Post tasks", title_justify="left")
    table.add_column("Task")
    shown = [s for s in POST_STATUSES if any(s in per for per in counts.values())]
    for status in shown:
        table.add_column(status.capitalize(), justify="right")
    for task in TASKS:
        if task in counts:
            table.add_row(task, *(str(counts[task].get(s, "")) for s in shown))
    return table


def attention_lines(outcomes: Sequence[Outcome], show: int = 8) -> list[Text]:
    """The lines a person should read: what failed and what to do, what is in doubt, what was not
    charged and why, and notes (a moved collection date, a replaced invoice). Invoices with the same
    message share one line, naming the first `show` of them."""
    lines = []
    outbox = [o for o in outcomes if o.status == "outbox"]
    if outbox:
        lines.append(Text(f"{len(outbox)} email(s) written to the outbox folder for review, not sent: "
                          "fill in SMTP Host in Settings to send them.", style="yellow"))
    groups: dict[tuple[str, str, bool], list[str]] = {}
    for o in needs_attention(outcomes):
        what = o.note if o.ok else (o.error or o.skipped_reason or o.note)
        groups.setdefault((o.task, what, bool(o.error) and not o.ok), []).append(o.number)
    for (task, what, failed), numbers in groups.items():
        named = ", ".join(numbers[:show]) + (f" and {len(numbers) - show} more" if len(numbers) > show else "")
        lines.append(Text(f"{named} {task}: {what}", style="red" if failed else "yellow"))
    return lines
