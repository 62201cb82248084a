"""The review: what finance looks at after a run (flags, the review page and its chart, the schedule
workbook, the run folders)."""
