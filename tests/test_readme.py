"""The README's install block, typed as it stands: from the folder holding the clone, `pipx install .`, then
init, check and run in a billing folder of its own. Only what a test cannot do is adapted: the system
packages (`sudo apt-get`) are taken as installed; pipx, when this machine has none, is installed into a
virtual environment of the test's own; pipx, HOME and the list of known ledgers are kept in tmp_path."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# what a copy of the clone leaves out: the developer's own environment, builds and outputs
NOT_THE_CLONE = shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "output", "inbox", "__pycache__",
                                       ".pytest_cache", ".hypothesis", "fixtures", ".cache", "results")


def install_block() -> list[str]:
    """The commands of the first shell block under "## Install", comments removed."""
    section = README.read_text().split("## Install\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def pipx(tmp: Path) -> list[str]:
    """This machine's pipx, or one installed for the test (the README's own link: pipx.pypa.io)."""
    if shutil.which("pipx") and subprocess.run(["pipx", "--version"], check=False, capture_output=True).returncode == 0:
        return ["pipx"]
    venv.create(tmp / "pipx-venv", with_pip=True)
    python = tmp / "pipx-venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pipx"], check=True)
    return [str(python), "-m", "pipx"]


@pytest.fixture(scope="module")
def typed(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The install block run once, in bash, as a user would type it: the result and the folder it ran in."""
    tmp = tmp_path_factory.mktemp("readme")
    work = tmp / "home"
    shutil.copytree(REPO, work / "billing_batch", ignore=NOT_THE_CLONE)  # the clone, in the folder holding it
    bin_dir = tmp / "pipx-bin"
    env = {**os.environ, "HOME": str(work), "PIPX_HOME": str(tmp / "pipx-home"), "PIPX_BIN_DIR": str(bin_dir),
           "BILLING_BATCH_DATA": str(tmp / "known-ledgers"),
           # the developer's venv must not answer for the installed command
           "PATH": os.pathsep.join([str(bin_dir), *(p for p in os.environ["PATH"].split(os.pathsep)
                                                     if not p.startswith(str(REPO)))])}
    env.pop("VIRTUAL_ENV", None)
    lines = install_block()
    runner = " ".join(pipx(tmp))
    script = ["set -euo pipefail"]
    for line in lines:
        if line.startswith("sudo apt-get"):
            continue  # the system libraries: setup.sh's job, present on the machines that run the tests
        script.append(re.sub(r"^pipx ", runner + " ", line))
    result = subprocess.run(["bash", "-c", "\n".join(script)], check=False, cwd=work, env=env, capture_output=True, text=True,
                            timeout=1200)
    return result, work


def test_the_install_block_is_what_the_readme_says():
    lines = install_block()
    assert any(line.startswith("sudo apt-get install") for line in lines)
    assert "cd billing_batch" in lines and "pipx install ." in lines  # from inside the clone, not ./billing_batch
    assert lines[-2:] == ["billing-batch init", "billing-batch check && billing-batch run"]


def test_the_install_block_runs_as_typed(typed):
    result, work = typed
    assert result.returncode == 0, result.stdout + result.stderr
    billing = work / "billing"
    assert (billing / "inbox" / "billing.xlsx").exists()
    assert (billing / "output" / "ledger.sqlite").exists()
    assert list((billing / "output" / "invoices").glob("*.pdf"))
    assert "No problems found" in result.stdout and "Made " in result.stdout


def test_every_month_is_typed_in_the_billing_folder_without_the_clone_s_venv(typed):
    """The monthly block names the installed command, not .venv/bin/billing-batch, and runs there."""
    result, work = typed
    assert result.returncode == 0, result.stdout + result.stderr
    section = README.read_text().split("## Every month\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands and all(c.startswith("billing-batch ") for c in commands)
    env = {**os.environ, "HOME": str(work), "BILLING_BATCH_DATA": str(work.parent / "known-ledgers")}
    billed = sorted((work / "billing" / "output" / "invoices").glob("*.pdf"))
    for command in commands:
        args = command.split()
        done = subprocess.run([str(work.parent / "pipx-bin" / args[0]), *args[1:]], check=False, cwd=work / "billing",
                              env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert sorted((work / "billing" / "output" / "invoices").glob("*.pdf")) == billed  # nothing billed twice
