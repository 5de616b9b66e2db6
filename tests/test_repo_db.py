"""The runs.db shipped with the repository: the user's history, at the current schema.

These tests read the database as committed, not the working file: README's first command trains into
./runs.db, and its second (the tests) must pass right after it (issue 28). Outside a git checkout (an
unpacked source archive) the working file is all there is.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from speedrun.tracking import db as dbmod
from tests.conftest import ROOT


@pytest.fixture
def shipped(tmp_path) -> Path:
    """A copy of the runs.db the repository ships (tests never touch the repository's own database)."""
    copy = tmp_path / "runs.db"
    committed = subprocess.run(["git", "-C", str(ROOT), "show", "HEAD:runs.db"], capture_output=True)
    if committed.returncode == 0 and committed.stdout:
        copy.write_bytes(committed.stdout)
    else:
        shutil.copy(ROOT / "runs.db", copy)
    return copy


def test_shipped_database_is_at_head_with_the_seed_runs(shipped):
    """The repository's runs.db holds the imported seed notebook at the current schema."""
    con = sqlite3.connect(f"file:{shipped}?mode=ro", uri=True)
    try:
        version = con.execute("select version_num from speedrun_version").fetchone()[0]  # not Optuna's table
        assert version == dbmod.head_revision()
        # The README's main job adds the user's own runs; the shipped history stays.
        rows = con.execute("select id, final_val_acc, source from runs where id <= 19 order by id").fetchall()
    finally:
        con.close()
    assert rows == [
        (15, 85.69, "notebook"),
        (16, 87.18, "notebook"),
        (17, 87.16, "notebook"),
        (18, 90.68, "notebook"),
        (19, 84.08, "notebook"),
    ]


def test_shipped_database_gives_the_seed_notebook_back(cli, shipped):
    """Made with the notebook importer: its report, computed parts stripped, is the user's notebook page."""
    from tests.conftest import SEED_NOTEBOOK
    from tests.test_import_cli import lines_of, strip_computed

    report = cli("report", db=shipped).stdout
    assert strip_computed(report) == lines_of(SEED_NOTEBOOK)
