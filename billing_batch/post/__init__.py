"""After the bill run: send the invoices, sync them to the accounting system, charge them by SEPA
Direct Debit. Each task runs once per invoice, whatever is rerun; see docs/post-tasks.md."""
from billing_batch.post.records import TASKS, Outcome, is_billed, live_invoices, task_status
from billing_batch.post.addresses import addresses_problem
from billing_batch.post.send import PASSWORD_VARIABLE
from billing_batch.post.tasks import after_billing, needs_attention, run_post_tasks, summary

__all__ = [
    "PASSWORD_VARIABLE",
    "TASKS",
    "Outcome",
    "addresses_problem",
    "after_billing",
    "is_billed",
    "live_invoices",
    "needs_attention",
    "run_post_tasks",
    "summary",
    "task_status",
]
