"""Every file a command writes goes through one path (issue 24, D1 and D11).

Plots, reports and exports refuse the database (and its -wal/-shm) whatever link leads
there, refuse FIFOs, devices and sockets without opening them, replace the directory
entry through a temporary file (never writing through a symlink), and take `-` for
standard output. FIFOs and device nodes are ones the tests make in tmp_path; commands
that would once hang run in a subprocess with a timeout, so a regression fails instead.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from speedrun.errors import SpeedrunError
from speedrun.tracking.store import Store
from tests.conftest import ROOT
from tests.helpers import add_run
from tests.test_hostile_input import digest, filled, one_error  # noqa: F401  (filled is a fixture)
from tests.test_store_cli import make_record

PNG = b"\x89PNG\r\n\x1a\n"


def speedrun(db: Path, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The program as a user runs it, in its own process: a hang fails the test at `timeout`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "speedrun", "--db", str(db), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)


def one_error_line(result: subprocess.CompletedProcess, containing: str = "") -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "internal error" not in errors[0] and "Traceback" not in result.stderr, result.stderr
    assert containing in errors[0], errors[0]
    return errors[0]


def make_sweep(db: Path, name: str = "lr") -> None:
    """A two-point grid sweep with no trial run yet: `sweep show --plots` still draws its picture."""
    from speedrun.sweep import runner
    from speedrun.sweep.space import parse_space

    store = Store.open(str(db))
    spec = runner.plan(name, "resnet18", parse_space({"lr": "0.02,0.04"}), sampler=None, trials=None, repeat=1,
                       objective="final_accuracy", prune=False, seed=0)
    runner.open_sweep(store, spec, name, lambda message: None)
    store.close()


def link(kind: str, source: Path, name: Path) -> None:
    if kind == "symlink":
        name.symlink_to(os.path.relpath(source, name.parent))
    else:
        os.link(source, name)


# --------------------------------------------------------------------------- D1: plots onto the database


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_report_plots_refuse_a_link_onto_the_database(cli, filled, tmp_path, kind):
    plots = tmp_path / "plots"
    plots.mkdir()
    link(kind, filled, plots / "run-1.png")
    before = digest(filled)
    one_error(cli("report", "--plots", str(plots), "-o", str(tmp_path / "r.md")), containing="database")
    assert digest(filled) == before
    assert filled.read_bytes()[:16] == b"SQLite format 3\x00"
    assert not (tmp_path / "r.md").exists()
    if kind == "symlink":
        assert (plots / "run-1.png").is_symlink()


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_compare_default_plot_refuses_a_link_onto_the_database(cli, filled, tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    link(kind, filled, tmp_path / "compare-1-2.png")
    before = digest(filled)
    one_error(cli("compare", "1", "2", "--plot"), containing="database")
    assert digest(filled) == before and filled.read_bytes()[:4] != PNG[:4]


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_sweep_show_plots_refuse_a_link_onto_the_database(cli, db_path, tmp_path, kind):
    make_sweep(db_path)
    plots = tmp_path / "plots"
    plots.mkdir()
    link(kind, db_path, plots / "sweep-lr-lr.png")
    before = digest(db_path)
    one_error(cli("sweep", "show", "lr", "--plots", str(plots)), containing="database")
    assert digest(db_path) == before


@pytest.mark.parametrize("command", [("sweep", "show", "lr"), ("report",)])
def test_plots_folder_that_is_a_file_or_a_fifo_is_one_error(cli, db_path, tmp_path, command):
    make_sweep(db_path)
    (tmp_path / "notes.md").write_text("mine\n")
    os.mkfifo(tmp_path / "pipe")
    for folder in ("notes.md", "pipe", "notes.md/plots"):
        one_error(cli(*command, "--plots", str(tmp_path / folder)), containing="cannot create the directory")
    assert (tmp_path / "notes.md").read_text() == "mine\n"


@pytest.mark.parametrize("companion", ["-wal", "-shm"])
@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_plots_refuse_a_link_onto_the_databases_wal_and_shm(cli, filled, tmp_path, kind, companion):
    """While another process has the database open, its -wal and -shm are part of it."""
    other = Store.open(str(filled))  # another process, holding the journal files open
    try:
        add_run(other, make_record(title="held"))
        journal = Path(f"{filled}{companion}")
        assert journal.exists()
        plots = tmp_path / "plots"
        plots.mkdir()
        link(kind, journal, plots / "run-1.png")
        held = journal.read_bytes()[:32]
        one_error(cli("report", "--plots", str(plots)), containing="database")
        assert journal.read_bytes()[:32] == held
    finally:
        other.close()
    assert len(Store.open(str(filled)).list_runs()) == 3


def test_a_dangling_symlink_to_the_databases_wal_is_refused(cli, filled, tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "run-1.png").symlink_to(f"{filled}-wal")
    before = digest(filled)
    one_error(cli("report", "--plots", str(plots)), containing="database")
    assert (plots / "run-1.png").is_symlink() and digest(filled) == before
    wal = Path(f"{filled}-wal")
    assert not wal.exists() or wal.read_bytes()[:4] != PNG[:4]


def test_plots_refuse_a_link_onto_any_other_sqlite_database(cli, filled, tmp_path):
    other = tmp_path / "other.db"
    Store.open(str(other)).close()
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "run-1.png").symlink_to(other)
    one_error(cli("report", "--plots", str(plots)), containing="SQLite")
    assert other.read_bytes()[:16] == b"SQLite format 3\x00"


def test_plots_replace_a_symlink_instead_of_writing_through_it(cli, filled, tmp_path):
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(b"my picture")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "run-1.png").symlink_to(elsewhere)
    assert cli("report", "--plots", str(plots), "-o", str(tmp_path / "r.md")).exit_code == 0
    assert elsewhere.read_bytes() == b"my picture"
    assert not (plots / "run-1.png").is_symlink() and (plots / "run-1.png").read_bytes()[:8] == PNG


def test_output_replaces_a_symlink_instead_of_writing_through_it(cli, filled, tmp_path):
    real = tmp_path / "real.md"
    real.write_text("my own notes\n")
    (tmp_path / "link.md").symlink_to(real)
    one_error(cli("report", "-o", str(tmp_path / "link.md")), containing="--force")
    assert cli("report", "-o", str(tmp_path / "link.md"), "--force").exit_code == 0
    assert real.read_text() == "my own notes\n"
    assert not (tmp_path / "link.md").is_symlink() and "Run 1" in (tmp_path / "link.md").read_text()


@pytest.mark.parametrize("spelling", ["{db}-wal", "{db}-shm", "{db}-journal", "{upper}", "{upper}-WAL"])
def test_output_onto_the_databases_journal_files_by_any_spelling(cli, filled, tmp_path, spelling):
    name = spelling.format(db=filled, upper=tmp_path / ".." / tmp_path.name / filled.name.upper())
    one_error(cli("export", "-o", name, "--force"), containing="database")
    assert not Path(name).exists() or Path(name).samefile(filled)


# --------------------------------------------------------------------------- D11: special files


@pytest.mark.parametrize("command", ["report", "export"])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_output_onto_a_fifo_is_refused_without_opening_it(filled, tmp_path, command, force):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    one_error_line(speedrun(filled, command, "-o", str(fifo), *force, timeout=60), containing="FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_plots_onto_a_fifo_are_refused_without_opening_it(filled, tmp_path):
    fifo = tmp_path / "compare-1-2.png"
    os.mkfifo(fifo)
    one_error_line(speedrun(filled, "compare", "1", "2", "--plot", cwd=tmp_path, timeout=60), containing="FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_output_onto_a_device_node_is_refused_and_left_alone(cli, filled, tmp_path):
    """`report -o /dev/null --force` as root replaced the device with a file; here with a node of our own."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    one_error(cli("report", "-o", str(node), "--force"), containing="device")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_output_onto_a_socket_is_refused(cli, filled, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative name: socket paths are limited to ~100 bytes
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock")
        one_error(cli("export", "-o", "sock", "--force"), containing="socket")
    assert stat.S_ISSOCK(os.lstat(tmp_path / "sock").st_mode)


@pytest.mark.parametrize("mode, kind", [
    (stat.S_IFCHR | 0o666, "character device"), (stat.S_IFBLK | 0o660, "block device"),
    (stat.S_IFIFO | 0o644, "FIFO"), (stat.S_IFSOCK | 0o755, "socket"), (stat.S_IFDIR | 0o755, "directory"),
    (stat.S_IFREG | 0o644, None),
])
def test_special_files_are_told_apart_by_their_mode(mode, kind):
    from speedrun.outputs import special_kind

    assert special_kind(os.stat_result((mode, 1, 1, 1, 0, 0, 0, 0, 0, 0))) == kind


def test_dash_means_standard_output(cli, filled, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = cli("report")
    assert cli("report", "-o", "-").stdout == report.stdout
    exported = cli("export", "-o", "-")
    assert exported.exit_code == 0 and exported.stdout.startswith("{") and exported.stdout.rstrip().endswith("}")
    assert not (tmp_path / "-").exists()


def test_dev_stdout_means_standard_output(filled, tmp_path):
    plain = speedrun(filled, "report")
    result = speedrun(filled, "report", "-o", "/dev/stdout")
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout and "Run 1" in result.stdout


def test_a_link_to_standard_output_is_standard_output_and_stays_a_link(filled, tmp_path):
    (tmp_path / "out").symlink_to("/dev/stdout")
    result = speedrun(filled, "export", "-o", str(tmp_path / "out"), "--force")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{") and (tmp_path / "out").is_symlink()


# --------------------------------------------------------------------------- the one writer, as a unit


def test_write_output_checks_every_caller(tmp_path):
    from speedrun import outputs

    database = tmp_path / "runs.db"
    Store.open(str(database)).close()
    outputs.guard(str(database))
    try:
        alias = tmp_path / "alias.bin"
        os.link(database, alias)
        with pytest.raises(SpeedrunError, match="database"):
            outputs.write_output(b"x", alias, force=True, what="plot")
        fresh = tmp_path / "fresh.png"
        outputs.write_output(PNG, fresh, force=False, what="plot")
        assert fresh.read_bytes() == PNG
        with pytest.raises(SpeedrunError, match="--force"):
            outputs.write_output(PNG, fresh, force=False, what="plot")
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    finally:
        outputs.guard(None)
