"""`autotimm replay` from anywhere reaches the run the spool came from, and a spool edited by hand cannot redirect it,
read other files or write outside the run: every refusal is one line on stderr, a non-zero exit and no traceback."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from autotimm import AutoTrainer, LoggerConfig
from autotimm.backends import mlflow_local_uri
from helpers import digits, tiny_classifier
from readers import csv_metrics

ROOT = Path(__file__).parent.parent


def cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "autotimm", "replay", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture
def spooled(workdir):
    "A finished run (CSV, MLflow in a store given by a relative path) whose last events each backend could not take."
    trainer = AutoTrainer(max_epochs=1, enable_progress_bar=False, limit_train_batches=2, limit_val_batches=1, live=False,
                          logger=[LoggerConfig("csv", {"save_dir": "logs"}),
                                  LoggerConfig("mlflow", {"experiment_name": "replay", "save_dir": "mlruns"})])
    trainer.fit(tiny_classifier(), datamodule=digits())
    m = trainer.logger_manager
    m.close()
    spools = {}
    for backend, value in (("csv", 2.5), ("mlflow", 1.5)):
        d = m.get_logger_by_backend(backend)._delivery
        d._spool("log_metrics", [{"late/x": value}, 99])  # as a failed call spools it (the fault itself is not the point here)
        spools[backend] = d.spool.path
    run = Path(m[0].log_dir)
    return {"run": run, "spools": spools, "mlflow": m.get_logger_by_backend("mlflow").run_id, "rows": csv_metrics(run)}


@pytest.fixture
def csv_spool(workdir):
    "A CSV run with a few rows written and one late event spooled; no training (the spool is what is under test)."
    from autotimm import LoggerManager
    m = LoggerManager([LoggerConfig("csv", {"save_dir": "logs"})])
    lg, d = m[0], m[0]._delivery
    assert d.start()
    lg.log_metrics({"train/loss": 1.0}, 0); lg.save(); lg.finalize("success")
    d._spool("log_metrics", [{"late/x": 2.5}, 99])
    return {"run": Path(lg.log_dir), "spools": {"csv": d.spool.path}}


class _Done:
    def __init__(self, returncode, out): self.returncode, self.stdout, self.stderr = returncode, out.out, out.err


def main_here(capsys, monkeypatch, *args, cwd):
    "`autotimm replay ...` through the CLI's `main`, in this process (what the console script runs)."
    from autotimm.cli import main
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = main(["replay", *map(str, args)])
    return _Done(code, capsys.readouterr())


def one_line_refusal(r, *words):
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autotimm replay:"), r.stderr[-2000:]
    for w in words: assert w in lines[0], lines[0]


def test_replay_from_another_folder_reaches_the_original_run(workdir, spooled, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    r = cli(spooled["spools"]["csv"], spooled["spools"]["mlflow"], cwd=elsewhere)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 events replayed to csv" in r.stdout and "1 events replayed to mlflow" in r.stdout
    assert list(elsewhere.iterdir()) == []  # no new folder, no new local MLflow store there
    df = csv_metrics(spooled["run"])  # the original rows, and the late point
    pd.testing.assert_frame_equal(df[df["late/x"].isna()].drop(columns=["late/x"]), spooled["rows"], check_dtype=False)
    assert df.dropna(subset=["late/x"])[["step", "late/x"]].values.tolist() == [[99, 2.5]]
    hist = MlflowClient(mlflow_local_uri(workdir / "mlruns")).get_metric_history(spooled["mlflow"], "late/x")
    assert [(h.step, h.value) for h in hist] == [(99, 1.5)]
    assert cli(spooled["spools"]["mlflow"], cwd=elsewhere).stdout.count("0 events replayed") == 1  # marked replayed: sent once


def _edit(path, fn):
    lines = [json.loads(l) for l in Path(path).read_text().splitlines()]
    fn(lines)
    Path(path).write_text("".join(json.dumps(l) + "\n" for l in lines))


def test_a_spool_whose_header_points_elsewhere_is_refused_until_the_place_is_given(workdir, csv_spool, capsys, monkeypatch):
    spooled, cli = csv_spool, lambda *a, cwd: main_here(capsys, monkeypatch, *a, cwd=cwd)
    spool, other = spooled["spools"]["csv"], workdir / "other"
    def redirect(lines): lines[0]["params"]["save_dir"] = str(other)
    _edit(spool, redirect)
    one_line_refusal(cli(spool, cwd=workdir), "points at", "--param save_dir=")
    assert not other.exists() and "late/x" not in csv_metrics(spooled["run"])
    def move(lines): lines[0]["run_folder"] = str(other)  # the header claims another run folder
    _edit(spool, move)
    one_line_refusal(cli(spool, cwd=workdir), "says its run is in", "--param save_dir=")
    r = cli(spool, "--param", f"save_dir={workdir / 'logs'}", cwd=workdir)  # the user names the place: it goes there
    assert r.returncode == 0, r.stderr[-2000:]
    assert csv_metrics(spooled["run"]).dropna(subset=["late/x"])["late/x"].tolist() == [2.5] and not other.exists()


@pytest.mark.parametrize("record", [
    {"kind": "log_file", "args": ["run", "stolen", "txt", {"$bytes": "/etc/hostname"}]},          # reads any file
    {"kind": "log_file", "args": ["run", "../../../../evil", "txt", {"$bytes": "000001-3.bin"}]},  # writes outside the run
    {"kind": "log_image", "args": ["val/x", {"$bytes": "../../x.bin"}, 1, "a"]},
    {"kind": "exec", "args": ["import os"]},                                                        # no such event
    {"kind": "log_metrics", "args": "not a list"},
], ids=["absolute blob", "../ file name", "../ blob", "unknown kind", "args not a list"])
def test_a_crafted_record_is_refused_before_anything_is_sent(workdir, csv_spool, record, capsys, monkeypatch):
    spooled, cli = csv_spool, lambda *a, cwd: main_here(capsys, monkeypatch, *a, cwd=cwd)
    spool = spooled["spools"]["csv"]
    with open(spool, "a") as f: f.write(json.dumps({"seq": 50, **record}) + "\n")
    before = sorted(p for p in workdir.rglob("*") if p.is_file() and "spool" not in p.parts)
    one_line_refusal(cli(spool, cwd=workdir), "record")
    assert "late/x" not in csv_metrics(spooled["run"])  # nothing sent, not even the good event before it
    assert sorted(p for p in workdir.rglob("*") if p.is_file() and "spool" not in p.parts) == before
    assert not list(Path("/").glob("evil*"))


def test_a_spool_that_is_no_json_is_one_line_too(workdir, capsys, monkeypatch):
    cli = lambda *a, cwd: main_here(capsys, monkeypatch, *a, cwd=cwd)
    Path("bad.jsonl").write_text("{not json\n")
    one_line_refusal(cli("bad.jsonl", cwd=workdir), "bad.jsonl")
    one_line_refusal(cli("missing.jsonl", cwd=workdir), "no spool file")
