"""Verified delivery: the report says what each backend's own record holds, read back; a name or value a backend would
not keep is refused before training or set aside with its reason; one refused event never blocks the rest; a full disk
under MLflow's store is found by reading back, and the replay completes the run. Real backends throughout."""
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from autotimm import LoggerConfig
from autotimm.backends import list_backends, mlflow_local_uri
from autotimm.delivery import BackendWarning, Spool, delivery_of
from autotimm.loggers import replay
from autotimm import media
from helpers import digits, disk_fills_mid_run, finish, local_configs, mounted, started
from readers import csv_metrics, mlflow_scalars, tensorboard_scalars


def test_every_backend_is_read_back_and_the_report_says_so(workdir):
    "A clean run: the report counts what each backend's own reader found, not what was sent."
    m = started(local_configs(name="v", backends=list_backends()))
    for step in range(10):
        for lg in m.loggers: lg.log_metrics({"train/loss": 1.0 / (step + 1), "epoch": 0}, step)
    finish(m)
    report = m.report()
    assert report.startswith("autotimm: every event delivered and read back:"), report
    for b in list_backends(): assert f"{b} 20 of 20" in report, report



def test_the_check_lists_media_without_downloading_them(workdir, monkeypatch):
    """Checking a run reads what the backend holds, not its bytes: an MLflow run with pictures and a table is verified
    without one download (MLflow's download shows a progress bar per file and copies each one), and a picture deleted
    from the store is still found missing."""
    m = started(local_configs(name="held", backends=["mlflow"]))
    for step in (1, 2, 3):
        media.log_image(m, "val/picture", np.zeros((8, 8, 3), np.uint8), step)
        media.log_table(m, "val/table", {"a": [step]}, step)
    downloads = []
    made = MlflowClient.download_artifacts
    monkeypatch.setattr(MlflowClient, "download_artifacts", lambda self, *a, **k: downloads.append(a) or made(self, *a, **k))
    verdict = delivery_of(m.loggers[0]).verify()
    assert verdict.ok and verdict.total == 6 and downloads == [], (str(verdict), downloads)
    for f in Path("mlruns").rglob("val~picture+step+2+*.png"): f.unlink()
    verdict = delivery_of(m.loggers[0]).verify()
    assert [(w, k, s) for w, k, s, _ in verdict.missing] == [("images", "val/picture", 2)], str(verdict)
    finish(m)

def test_values_a_backend_cannot_keep_are_listed_never_counted_delivered(workdir):
    "NaN, +-inf and a number past 32-bit floats: each backend keeps what it can; the rest is set aside, with why."
    m = started([LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("tensorboard", {"save_dir": "logs"}),
                 LoggerConfig("mlflow", {"experiment_name": "v", "save_dir": "mlruns"}),
                 LoggerConfig("comet", {"project": "v", "save_dir": "comet"})])
    values = [0.5, float("nan"), float("inf"), float("-inf"), 1e39]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendWarning)
        for step, v in enumerate(values):
            for lg in m.loggers: lg.log_metrics({"train/loss": v}, step)
    finish(m)
    report, s = m.report(), m.summary()
    assert "every event delivered" not in report
    # CSV keeps all five, exactly (read with pandas)
    got = csv_metrics(m.loggers[0].log_dir)["train/loss"].tolist()
    assert got[0] == 0.5 and math.isnan(got[1]) and got[2:] == [float("inf"), float("-inf"), 1e39]
    # Comet keeps the finite ones; NaN and +-inf are set aside and named in the report
    assert s["comet"]["rejected"] == 3 and s["comet"]["read_back"] == "verified 2 of 2", s["comet"]
    assert "comet: set aside 'train/loss' at step 1 = nan: Comet does not keep NaN or infinite values" in report, report
    # MLflow keeps NaN and the finite ones, not +-inf (its store keeps them as its largest float)
    assert s["mlflow"]["rejected"] == 2 and s["mlflow"]["read_back"] == "verified 3 of 3", s["mlflow"]
    ml = mlflow_scalars(MlflowClient(mlflow_local_uri("mlruns")), m.loggers[2].run_id)["train/loss"]
    assert [st for st, _ in ml] == [0, 1, 4]
    # TensorBoard keeps NaN and +-inf as 32-bit floats, not 1e39
    assert s["tensorboard"]["rejected"] == 1 and [st for st, _ in tensorboard_scalars(m.loggers[1].log_dir)["train/loss"]] == [0, 1, 2, 3]
    assert "TensorBoard keeps 32-bit floats" in report


def test_a_metric_name_a_backend_would_not_keep_is_set_aside_and_the_rest_flows(workdir):
    "A name MLflow refuses (`准确率`) once dropped every later point of the run; now only that name is set aside."
    m = started([LoggerConfig("mlflow", {"experiment_name": "v", "save_dir": "mlruns"}), LoggerConfig("csv", {"save_dir": "logs"})])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(20): 
            for lg in m.loggers: lg.log_metrics({"准确率": 0.5, "train/loss": 1.0 / (step + 1)}, step)
    finish(m)
    ml = mlflow_scalars(MlflowClient(mlflow_local_uri("mlruns")), m.loggers[0].run_id)
    assert len(ml["train/loss"]) == 20
    assert csv_metrics(m.loggers[1].log_dir)["准确率"].notna().sum() == 20  # CSV keeps it as given
    report, s = m.report(), m.summary()
    assert s["mlflow"]["rejected"] == 20 and s["mlflow"]["read_back"] == "verified 20 of 20" and s["csv"]["rejected"] == 0
    assert "mlflow: set aside '准确率' at step 0 = 0.5: MLflow keeps only ASCII letters" in report, report
    assert sum("does not keep '准确率'" in str(w.message) for w in caught) == 1  # said once, not at every step


def test_a_media_key_no_backend_can_store_fails_at_its_call_and_nothing_else_is_affected(workdir):
    "A 300-character image key once kept CSV and MLflow down for the rest of the run and blocked the replay."
    m = started([LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("mlflow", {"experiment_name": "v", "save_dir": "mlruns"})])
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"log_image: key: 'kkk.*' would not be kept as given by the csv backend .*Use a name such as"):
        media.log_image(m, "k" * 300, img, 0)
    for name in ("x" * 300, "é" * 140):  # a long name, and one long in bytes (UTF-8), not in characters
        with pytest.raises(ValueError, match="log_image: name"): media.log_image(m, "val/pic", img, 0, name=name)
    media.log_image(m, "val/pic", img, 0)  # a good key still goes everywhere
    for step in range(30):
        for lg in m.loggers: lg.log_metrics({"train/loss": float(step)}, step)
    finish(m)
    assert len(csv_metrics(m.loggers[0].log_dir)) == 30 and not list(Path("logs").rglob("spool"))
    assert m.report().startswith("autotimm: every event delivered and read back: csv 31 of 31, mlflow 31 of 31")


def test_reading_back_finds_what_a_full_disk_lost_and_replay_completes_it(workdir, monkeypatch):
    "MLflow's store on a disk that fills: its logging thread drops batches while every call returns; the read-back finds them."
    monkeypatch.setenv("AUTOTIMM_SPOOL_DIR", str(workdir / "fallback"))
    with mounted(workdir / "small", "-t", "tmpfs", "-o", "size=3m", "tmpfs") as disk:
        m = started([LoggerConfig("mlflow", {"experiment_name": "full", "save_dir": str(disk / "mlruns")}),
                     LoggerConfig("csv", {"save_dir": "logs"})])
        mlf = m.loggers[0]
        filler, report = disk_fills_mid_run(m, disk, before=__import__("mlflow").flush_async_logging)  # the disk fills under the run
        v = delivery_of(mlf).verdict
        assert v.reason is None and v.verified < v.total == 20, v  # read back: some points are not in the store
        missing = sorted(step for _, _, step, _ in v.missing)
        assert f"mlflow: verified {v.verified} of 20; missing: train/loss (steps" in report, report
        assert "the missing points wait in its spool" in report and "autotimm replay" in report
        spools = delivery_of(mlf).spool_paths
        assert spools, report
        filler.unlink()  # the disk takes writes again
        for path in spools: assert replay(path)["pending"] == 0
        ml = mlflow_scalars(MlflowClient(mlflow_local_uri(disk / "mlruns")), mlf.run_id)["train/loss"]
        assert sorted({st for st, _ in ml}) == list(range(20)), (missing, ml)


def _spool_with_a_refused_event(workdir):
    "A CSV run whose spool holds 6 metric events with one a backend refuses for its content (a file name too long) between."
    m = started([LoggerConfig("csv", {"save_dir": "logs"})])
    lg = m.loggers[0]
    d = delivery_of(lg)
    d._spool("log_metrics", [{"train/loss": 0.0}, 0, time.time()])
    d._spool("log_file", ["k" * 300, "x", "json", b"{}"])  # written before names were checked: the disk refuses it
    for step in range(1, 6): d._spool("log_metrics", [{"train/loss": float(step)}, step, time.time()])
    lg.finalize("success"); m.close()
    return lg, d.spool.path


def test_replay_sets_aside_an_event_the_backend_refuses_and_sends_the_rest(workdir):
    lg, path = _spool_with_a_refused_event(workdir)
    out = replay(path)
    assert out["pending"] == 0 and out["replayed"] == 6, out
    assert out["rejected"][0][0] == "k" * 300 and "File name too long" in out["rejected"][0][3], out["rejected"]
    assert csv_metrics(lg.log_dir)["train/loss"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert out["read_back"] == "verified 6 of 6"
    again = replay(path)  # twice is once
    assert again["replayed"] == 0 and csv_metrics(lg.log_dir)["train/loss"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    sp = Spool(path)
    assert sp.load()[1] == [] and list(sp.rejected.values())[0].startswith("OSError")  # the refused event stays in the file, marked


def test_two_replays_of_one_spool_at_once_send_each_event_once(workdir):
    "Two `autotimm replay` processes started together: one sends, the other says the spool is being replayed."
    lg, path = _spool_with_a_refused_event(workdir)
    cmd = [str(Path(sys.executable).parent / "autotimm"), "replay", str(path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert csv_metrics(lg.log_dir)["train/loss"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], outs
    busy = [o for o in outs if "is being replayed by process" in o]
    assert len(busy) <= 1, outs  # at most one was turned away (the other may have started after the first ended)


def test_a_held_spool_lock_turns_a_replay_away_naming_the_holder(workdir):
    lg, path = _spool_with_a_refused_event(workdir)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from autotimm.delivery import Spool\n"
                               "with Spool(sys.argv[1]).locked(): print('held', flush=True); time.sleep(60)", str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError, match=f"is being replayed by process {holder.pid};"): replay(path)
    finally:
        holder.kill(); holder.wait()
    assert replay(path)["pending"] == 0  # once the holder is gone


def test_spools_go_to_each_versioned_backends_own_folder(workdir):
    "TensorBoard listed before CSV: CSV's spool is in CSV's run folder, and the command the report prints works as printed."
    m = started([LoggerConfig("tensorboard", {"save_dir": "tb"}), LoggerConfig("csv", {"save_dir": "csvlogs"})])
    tb, csv = m.loggers
    delivery_of(csv)._spool("log_metrics", [{"train/loss": 1.0}, 0, time.time()])
    path = delivery_of(csv).spool.path
    assert path.parent.parent == Path(csv.log_dir).resolve()
    for lg in m.loggers: lg.finalize("success")
    m.close()
    assert f"autotimm replay {path}" in m.report()
    done = subprocess.run([str(Path(sys.executable).parent / "autotimm"), "replay", str(path)], capture_output=True, text=True,
                          cwd="/")  # from any folder
    assert done.returncode == 0, done.stdout + done.stderr
    assert csv_metrics(csv.log_dir)["train/loss"].tolist() == [1.0]


def test_a_metric_name_a_backend_would_not_keep_fails_before_training(workdir):
    "`MetricConfig(name='准确率')` with MLflow on: a clear error before any step, naming the field, the backend and a safe name."
    from autotimm import AutoTrainer, ImageClassifier, MetricConfig
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            metrics=[MetricConfig(name="准确率", metric_class="Accuracy", params={"task": "multiclass"})])
    trainer = AutoTrainer(max_epochs=1, enable_progress_bar=False, limit_train_batches=2, limit_val_batches=1,
                          logger=[LoggerConfig("csv", {"save_dir": "logs"}), LoggerConfig("mlflow", {"experiment_name": "m", "save_dir": "mlruns"})])
    with pytest.raises(ValueError, match=r"MetricConfig\(name='准确率'\) \(logged as 'train/准确率'\): 'train/准确率' would not be kept as given "
                                         r"by the mlflow backend \(MLflow keeps only ASCII letters.*Use a name such as 'train/metric'"):
        trainer.fit(model, datamodule=digits())
    assert trainer.global_step == 0 and not list(Path("logs").rglob("metrics.csv"))


def test_events_only_memory_held_are_reported_lost_not_pending(workdir, monkeypatch):
    "No disk takes the spool (the run folder and the fallback are under a file): at the run's end they are lost, and said so."
    Path("blocker").write_text("a file, so no folder can be made under it")
    monkeypatch.setenv("AUTOTIMM_SPOOL_DIR", str(workdir / "blocker" / "fallback"))
    m = started([LoggerConfig("csv", {"save_dir": "logs"})])
    lg = m.loggers[0]
    d = delivery_of(lg)
    d._spool_dir = workdir / "blocker" / "run"
    d._spool("log_metrics", [{"train/loss": 1.0}, 0, time.time()])
    assert d.counts()["pending"] == 1 and "memory" in d.spool_location
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.close()
    c = d.counts()
    assert (c["pending"], c["lost"]) == (0, 1), c
    assert any("they are lost" in str(w.message) for w in caught)
    assert "lost" in m.report()
