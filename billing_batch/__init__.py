"""billing_batch: the monthly billing batch."""
