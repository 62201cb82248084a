"""The ledger: the SQLite system of record of what was billed, its migrations and backups, and its check."""
