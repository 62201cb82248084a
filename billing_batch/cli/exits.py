"""The exit codes: what a script that calls billing-batch sees."""

EXIT_OK, EXIT_SET_ASIDE, EXIT_UNUSABLE, EXIT_REFUSED, EXIT_INTERNAL = 0, 1, 2, 3, 4
