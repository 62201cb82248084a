"""The default templates. This folder is their source; it ships inside the package as
`billing_batch.templates`, so an installed billing-batch finds them wherever it runs."""
from importlib.resources import files
from pathlib import Path

FOLDER = Path(str(files(__name__)))
