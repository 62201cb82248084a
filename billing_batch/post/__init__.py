"""After the bill run: send the invoices, sync them to the accounting system, charge them by SEPA
Direct Debit. Each task runs once per invoice, whatever is rerun; see docs/post-tasks.md."""
from billing_batch.post.charge import bic_problem, creditor_id_problem, iban_problem, mandate_id_problem
from billing_batch.post.send import PASSWORD_VARIABLE, addresses_problem
from billing_batch.post.tasks import (
    TASKS,
    Outcome,
    is_billed,
    live_invoices,
    needs_attention,
    parse_tasks,
    run_post_tasks,
    summary,
    task_status,
)

__all__ = [
    "PASSWORD_VARIABLE",
    "TASKS",
    "Outcome",
    "addresses_problem",
    "bic_problem",
    "creditor_id_problem",
    "iban_problem",
    "is_billed",
    "live_invoices",
    "mandate_id_problem",
    "needs_attention",
    "parse_tasks",
    "run_post_tasks",
    "summary",
    "task_status",
]
