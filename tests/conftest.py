import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # the benchmarks package: its file generators serve the tests

import os  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402

# Each test, and each module's and session's fixtures, its own list of known ledgers
# (billing_batch.ledger.known): the tests bill the same contract IDs in many folders, which one list
# would rightly refuse, and the user's own list is not the tests' to write.
os.environ["BILLING_BATCH_DATA"] = tempfile.mkdtemp(prefix="known-ledgers-")


@pytest.fixture(autouse=True, scope="module")
def own_known_ledgers_per_module(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BILLING_BATCH_DATA", str(tmp_path_factory.mktemp("known-ledgers")))
        yield


@pytest.fixture(autouse=True)
def own_known_ledgers(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BILLING_BATCH_DATA", str(tmp_path_factory.mktemp("known-ledgers")))
