"""`python -m billing_batch.cli`, as before the command line became a package."""
import sys

from billing_batch.cli import main

if __name__ == "__main__":  # render workers re-import this module
    sys.exit(main())
