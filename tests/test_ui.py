"""`speedrun ui`: every page and JSON endpoint through Starlette's TestClient, on SQLite and PostgreSQL.

The database is the user's messy notebook (tests/data/user-notebook.md: series, a repeated label,
summary-only runs), a run whose title is a <script>, and a run that is still training.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store
from speedrun.ui.app import MAX_POINTS, create_app, downsample
from tests.conftest import DATA

SCRIPT_TITLE = "<script>alert(1)</script>"


@pytest.fixture
def ui_db(cli, db_path):
    """The user's notebook, a hostile title, and a running run with two epochs."""
    assert cli("import-md", str(DATA / "user-notebook.md")).exit_code == 0
    assert cli("note", "3", "--title", SCRIPT_TITLE).exit_code == 0
    store = Store.open(str(db_path))
    run_id = store.begin_run(RunRecord(source="train", status="running", title="live one",
                                       params={"model": "resnet18", "lr": 0.04, "epochs": 4}))
    for epoch in (1, 2):
        store.add_epoch(run_id, EpochRecord(epoch, train_loss=1.0 / epoch, val_acc=40.0 + epoch,
                                            duration_s=1.0, elapsed_s=float(epoch)))
    store.close()
    return db_path, run_id


@pytest.fixture
def client(ui_db):
    db_path, _ = ui_db
    store = Store.open_read_only(str(db_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's note on the httpx version
        client = TestClient(create_app(store), raise_server_exceptions=False)
    yield client
    store.close()


def test_the_runs_page_is_one_page_of_the_table_with_its_count(client, ui_db):
    page = client.get("/?per=5")
    assert page.status_code == 200
    assert page.text.count('<tr id="run-row-') == 5
    total = client.get("/api/runs?per=5").json()["total"]
    assert f"{total} runs, page 1 of {-(-total // 5)}." in page.text
    second = client.get("/?per=5&page=2")
    assert second.status_code == 200 and "page 2 of" in second.text


def test_the_runs_json_twin_has_the_fields_of_list_json(client, cli):
    api = client.get("/api/runs?per=500").json()
    listed = json.loads(cli("list", "--json").stdout)
    by_id = {r["id"]: r for r in api["runs"]}
    assert api["total"] == len(listed) == len(by_id)
    for row in listed:
        assert set(row) == set(by_id[row["id"]])
        assert by_id[row["id"]]["final_val_acc"] == row["final_val_acc"]


def test_sorting_by_a_column_and_descending(client):
    rows = client.get("/api/runs?sort=final&desc=1&per=500").json()["runs"]
    finals = [r["final_val_acc"] for r in rows if r["final_val_acc"] is not None]
    assert finals == sorted(finals, reverse=True)
    assert client.get("/api/runs?sort=final").json()["runs"][0]["final_val_acc"] == min(finals)


def test_the_column_picker_adds_parameter_columns(client):
    page = client.get("/?cols=lr,batch_size")
    assert "<th>lr</th><th>batch_size</th>" in page.text
    assert 'class="col-pick" value="lr" checked' in page.text


def test_the_run_page_shows_facts_texts_log_and_a_chart(client, cli):
    detail = json.loads(cli("show", "1", "--json").stdout)
    page = client.get("/runs/1")
    assert page.status_code == 200
    assert 'id="chart"' in page.text and 'id="chart-data"' in page.text
    data = json.loads(page.text.split('id="chart-data">', 1)[1].split("</script>", 1)[0])
    assert data["series"]["val_acc"] == [e["val_acc"] for e in detail["epoch_metrics"]]
    assert client.get("/api/runs/1").json() == detail  # the JSON twin is show --json


def test_user_text_is_escaped_and_markdown_keeps_no_raw_html(client):
    page = client.get("/runs/3")
    assert SCRIPT_TITLE not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    table = client.get("/?per=500")
    assert SCRIPT_TITLE not in table.text
    from speedrun.analysis.report import markdown_renderer
    from speedrun.ui.app import _script_json

    assert "<img" not in markdown_renderer().render("<img src=x onerror=alert(1)>")
    assert "</script>" not in _script_json({"title": "</script><script>alert(1)</script>"})


def test_a_running_run_is_watched_through_a_small_live_endpoint(client, ui_db, db_path):
    _, run_id = ui_db
    row = client.get(f"/runs/{run_id}/row")
    assert 'hx-trigger="every 2000ms"' in row.text  # a running run's row refreshes itself
    live = client.get(f"/api/runs/{run_id}/live?after=1").json()
    assert live["status"] == "running" and live["epochs_completed"] == 2
    assert [e["epoch"] for e in live["new_epochs"]] == [2]
    writer = Store.open(str(db_path))
    writer.add_epoch(run_id, EpochRecord(3, train_loss=0.3, val_acc=44.0, duration_s=1.0, elapsed_s=3.0))
    writer.close()
    live = client.get(f"/api/runs/{run_id}/live?after=2").json()
    assert [(e["epoch"], e["val_acc"]) for e in live["new_epochs"]] == [(3, 44.0)]
    assert live["epochs_completed"] == 3


def test_compare_gives_the_verdict_word_for_word_as_the_cli(client, cli):
    page = client.get("/compare?runs=1&runs=2")
    assert page.status_code == 200
    cli_data = json.loads(cli("compare", "1", "2", "--json").stdout)
    api = client.get("/api/compare?runs=1,2").json()
    assert [v["line"] for v in api["verdicts"]] == [v["line"] for v in cli_data["verdicts"]]
    for verdict in cli_data["verdicts"]:
        assert verdict["line"].replace("<", "&lt;").replace(">", "&gt;") in page.text


def test_records_report_and_verdict_fragment(client):
    assert "Records" in client.get("/records").text
    report = client.get("/report")
    assert report.status_code == 200 and report.text.startswith("<!DOCTYPE html>")
    assert client.get("/runs/2/verdict").status_code == 200


@pytest.mark.parametrize("path, status", [
    ("/runs/999", 404), ("/api/runs/999", 404), ("/api/runs/999/live", 404), ("/runs/999/row", 404),
    ("/?sort=bogus", 400), ("/api/runs?page=0", 400), ("/api/runs?per=x", 400),
    ("/compare?runs=1", 400), ("/api/compare?runs=1&runs=999", 404), ("/api/runs/1/live?after=x", 400),
    ("/static/../app.py", 404), ("/static/%2e%2e/app.py", 404), ("/nowhere", 404),
    ("/?where=lr%20%3C", 400), ("/api/runs?where=bogus_name%20%3D%201", 400),
])
def test_errors_are_pages_with_a_sentence_never_a_traceback(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert "Traceback" not in response.text
    if path.startswith("/api/"):
        assert response.json()["error"]
    else:
        assert 'class="error"' in response.text


def test_every_route_leaves_the_database_unchanged_and_writes_are_refused(client, ui_db, backend):
    db_path, run_id = ui_db
    before = _fingerprint(db_path, backend)
    for path in ("/", "/api/runs", "/runs/1", "/api/runs/1", f"/api/runs/{run_id}/live", "/runs/1/verdict",
                 "/compare?runs=1,2", "/api/compare?runs=1,2", "/records", "/report", "/runs/1/row", "/sweeps",
                 "/api/sweeps"):
        assert client.get(path).status_code == 200, path
    assert _fingerprint(db_path, backend) == before
    reader = Store.open_read_only(str(db_path))
    from speedrun.errors import SpeedrunError

    with pytest.raises(SpeedrunError):
        reader.update_texts(1, title="changed")
    reader.read_only = None  # even past the store's own check, the connection refuses
    with pytest.raises(SpeedrunError, match="read.only|readonly|attempt to write"):
        reader.update_texts(1, title="changed")
    reader.close()


def _fingerprint(db_path, backend) -> str:
    if backend == "sqlite":
        return hashlib.sha256(Path(db_path).read_bytes()).hexdigest()
    store = Store.open(str(db_path))
    try:
        rows = [(r["id"], r["title"], r["final_val_acc"], r["epochs_completed"]) for r in
                json.loads(json.dumps([{"id": v.id, "title": v.title, "final_val_acc": v.final_val_acc,
                                        "epochs_completed": v.epochs_completed} for v in store.list_runs()]))]
    finally:
        store.close()
    return repr(rows)


def test_no_password_appears_on_any_page(ui_db):
    """Pages name the database by the store's label, made by display_name: a URL's password never shows."""
    from speedrun.tracking.db import display_name

    db_path, run_id = ui_db
    store = Store.open_read_only(str(db_path))
    store.label = display_name("postgresql+psycopg://alice:s3cret@db.example/speedrun?sslpassword=s3cret")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(create_app(store), raise_server_exceptions=False)
    for path in ("/", "/runs/1", "/records", "/compare?runs=1,2", "/runs/999", "/api/runs/999", "/?sort=x"):
        response = client.get(path)
        assert "s3cret" not in response.text, path
    assert "alice" in client.get("/").text  # the label is shown, masked
    store.close()


def test_long_curves_are_downsampled_keeping_both_ends():
    points = list(range(10_000))
    thinned = downsample(points)
    assert len(thinned) == MAX_POINTS and thinned[0] == 0 and thinned[-1] == 9_999
    assert downsample(points[:10]) == points[:10]


def test_speedrun_ui_warns_before_listening_beyond_this_machine(cli, monkeypatch, db_path):
    import uvicorn

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level: served.update(host=host, port=port))
    assert cli("list").exit_code == 0  # the database exists
    local = cli("ui", "--port", "9999")
    assert local.exit_code == 0 and served == {"host": "127.0.0.1", "port": 9999}
    assert "Warning" not in local.output and "read-only" in local.output
    wide = cli("ui", "--host", "0.0.0.0")
    assert wide.exit_code == 0 and "Warning: listening on 0.0.0.0" in wide.output


def test_the_filter_box_takes_the_where_language(client, cli):
    query = "batch_size = 128 or model ~ \"simple*\""
    wanted = {r["id"] for r in json.loads(cli("list", "--where", query, "--json").stdout)}
    assert wanted
    api = client.get("/api/runs", params={"where": query, "per": 500}).json()
    assert {r["id"] for r in api["runs"]} == wanted and api["total"] == len(wanted)
    page = client.get("/", params={"where": query})
    assert f"{len(wanted)} runs" in page.text
    assert page.text.count('<tr id="run-row-') == len(wanted)


def test_a_malformed_filter_says_where_with_a_caret(client):
    page = client.get("/", params={"where": "lr < and cosine"})
    assert page.status_code == 400
    assert "--where:" in page.text and "lr &lt; and cosine" in page.text and "^" in page.text
    # Typed into the box (an htmx request), the table shows the error above no rows.
    partial = client.get("/", params={"where": "lr < and cosine"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and 'id="where-error"' in partial.text
    unknown = client.get("/api/runs", params={"where": "batch_sise = 64"}).json()["error"]
    assert "batch_size" in unknown  # did you mean


def test_the_sweeps_page_ranks_the_trials_as_sweep_show_does(cli, db_path, tmp_path, tiny_nets):
    """A two-trial sweep of the tiniest training: the page shows its table, its answer and its picture,
    and its JSON twin is `sweep show --json`."""
    from speedrun.training.data import write_synthetic_cifar10

    write_synthetic_cifar10(tmp_path / "data", n_train=64, n_test=32)
    result = cli("sweep", "--name", "tiny", "--lr", "0.02,0.04", "--model", "resnet9", "--epochs", "1", "--bs", "32",
                 "--device", "cpu", "--amp", "off", "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    shown = json.loads(cli("sweep", "show", "tiny", "--json").stdout)
    store = Store.open_read_only(str(db_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(create_app(store), raise_server_exceptions=False)
    page = client.get("/sweeps")
    assert page.status_code == 200 and "Sweep tiny" in page.text
    for row in shown["trials"]:
        assert f"<td>{row['label']}</td>" in page.text
    assert 'src="data:image/png;base64,' in page.text
    api = client.get("/api/sweeps").json()
    assert [a["name"] for a in api] == ["tiny"] and api[0]["trials"] == shown["trials"]
    store.close()


def test_the_noise_pool_is_kept_until_the_runs_change(ui_db, db_path):
    """Compare pages reuse the spreads of the user's repeats until a run is added or records an epoch."""
    from speedrun.ui.app import UI

    reader = Store.open_read_only(str(db_path))
    view = UI(reader)
    first = view.noise_pool()
    assert view.noise_pool() is first
    _, run_id = ui_db
    writer = Store.open(str(db_path))
    writer.add_epoch(run_id, EpochRecord(3, train_loss=0.3, val_acc=44.0, duration_s=1.0, elapsed_s=3.0))
    writer.close()
    assert view.noise_pool() is not first
    reader.close()


def test_the_verdict_fragment_follows_the_runs_as_they_change(tmp_path):
    """The fragment keeps its hardware class's baselines while the runs do not change (375 ms per
    request at 10,000 runs otherwise); a run added since is seen at the next request."""
    from datetime import datetime

    def noted(minute, lr, final, batch_size=64):
        return RunRecord(source="notebook", title=f"lr {lr}", hardware="Google Colab, T4 GPU", final_val_acc=final,
                         train_time_s=400.0, params={"model": "ResNet-9", "lr": lr, "batch_size": batch_size},
                         created_at=datetime(2025, 6, 1, 12, minute))

    path = str(tmp_path / "runs.db")
    writer = Store.open(path)
    writer.add_runs([noted(0, 0.02, 88.0, batch_size=128), noted(10, 0.04, 88.5)])
    reader = Store.open_read_only(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(create_app(reader), raise_server_exceptions=False)
    assert "vs Run 1 (lr and batch_size differ)" in client.get("/runs/2/verdict").text
    writer.add_runs([noted(5, 0.03, 88.2)])  # earlier than run 2, and only lr differs
    assert "vs Run 3 (only lr differs)" in client.get("/runs/2/verdict").text
    reader.close()
    writer.close()
