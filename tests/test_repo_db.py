"""The runs.db shipped with the repository: the user's history, at the current schema."""

from __future__ import annotations

import sqlite3

from speedrun.tracking import db as dbmod
from tests.conftest import ROOT


def test_shipped_database_is_at_head_with_the_seed_runs():
    """The repository's runs.db holds the imported seed notebook at the current schema."""
    # Read-only: tests never write to the repository's own database.
    con = sqlite3.connect(f"file:{ROOT / 'runs.db'}?mode=ro", uri=True)
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


def test_shipped_database_gives_the_seed_notebook_back(cli, tmp_path):
    """Made with the notebook importer: its report, computed parts stripped, is the user's notebook page."""
    import shutil

    from tests.conftest import SEED_NOTEBOOK
    from tests.test_import_cli import lines_of, strip_computed

    copy = tmp_path / "runs.db"
    shutil.copy(ROOT / "runs.db", copy)  # a copy: tests never touch the repository's own database
    report = cli("report", db=copy).stdout
    assert strip_computed(report) == lines_of(SEED_NOTEBOOK)
