"""The spool survives and cannot be abused: a cut-short line is skipped and reported while the rest replays; crafted
records (absolute or `../` blob names, `../` file names, unknown kinds, wrong argument types) are refused with one
clear line before anything is read or written; guarded loggers keep isinstance, keyword arguments, pickle and copy."""
import copy
import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from autotimm import LoggerConfig, LoggerManager
from autotimm.delivery import BackendWarning, Spool, delivery_of, lightning_class
from autotimm.loggers import replay
from helpers import tiny_classifier
from readers import csv_metrics, tensorboard_run


class Down(CSVLogger):
    "Lightning's CSV logger with an injected fault: its backend refuses every metric."
    def log_metrics(self, metrics, step=None): raise ConnectionError("backend down")


def spooled_csv_run(workdir, steps=5):
    "A guarded CSV logger whose backend refused `steps` metrics: `(logger, spool path)`."
    from autotimm.delivery import guard
    lg = guard(Down(workdir / "logs", name="run", version=0), spool_dir=workdir / "logs" / "run" / "version_0",
               header={"run_name": "version_0", "params": {"save_dir": "logs", "name": "run"}, "ids": {"version": 0}},
               backend="csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendWarning)
        for s in range(steps): lg.log_metrics({"loss": 1.0 / (s + 1)}, step=s)
    return lg, lg._delivery.spool.path


def test_a_cut_short_line_is_skipped_and_reported_the_rest_replays(workdir):
    lg, path = spooled_csv_run(workdir)
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3][:len(lines[3]) // 2]  # the 3rd event's line, cut short as a full disk leaves it
    path.write_bytes(b"\n".join(lines))
    with pytest.warns(BackendWarning, match=r"skipped 1 cut-short line \(line 4\); the other events replay"):
        done = replay(path)
    assert done["replayed"] == 4 and done["pending"] == 0
    df = csv_metrics(workdir / "logs" / "run" / "version_0")  # pandas, as a user reads it
    assert df["step"].tolist() == [0, 1, 3, 4] and df["loss"].tolist() == pytest.approx([1, 1 / 2, 1 / 4, 1 / 5])


def test_a_spool_whose_last_line_was_cut_keeps_taking_events(workdir):
    lg, path = spooled_csv_run(workdir, steps=2)
    path.write_bytes(path.read_bytes()[:-7])  # the last line cut short
    spool = Spool(path)  # a new process opens the same spool
    spool.append("log_metrics", [{"loss": 0.1}, 9])
    with pytest.warns(BackendWarning, match="line 3"):
        assert [(s, a[:2]) for s, _, a in spool.pending()] == [(1, [{"loss": 1.0}, 0]), (2, [{"loss": 0.1}, 9])]


def test_header_paths_are_absolute(workdir):
    lg, path = spooled_csv_run(workdir, steps=1)
    head = Spool(path).header()
    assert head["params"]["save_dir"] == str(workdir / "logs") and head["cwd"] == str(workdir)
    assert head["run_folder"] == str(workdir / "logs" / "run" / "version_0")


OUTSIDE = "outside.txt"


def craft(workdir, record, blob=None):
    "A spool of the run `spooled_csv_run` makes, with its events replaced by `record` (and a blob file beside it)."
    lg, path = spooled_csv_run(workdir, steps=1)
    head = path.read_text().splitlines()[0]
    path.write_text(head + "\n" + json.dumps(record) + "\n")
    if blob: (path.with_suffix("") / blob).parent.mkdir(exist_ok=True); (path.with_suffix("") / blob).write_bytes(b"x")
    return path


CRAFTED = {
    "absolute blob path": ({"seq": 1, "kind": "log_file", "args": ["run", "m", "json", {"$bytes": "/etc/passwd"}]},
                           "args[3] of log_file must be {'$bytes': <plain file name>}, got {'$bytes': '/etc/passwd'}"),
    "../ blob name": ({"seq": 1, "kind": "log_file", "args": ["run", "m", "json", {"$bytes": f"../../../{OUTSIDE}"}]},
                      "args[3] of log_file must be {'$bytes': <plain file name>}"),
    "../ file name": ({"seq": 1, "kind": "log_file", "args": ["run", "../../../../escaped", "json", {"$bytes": "000001-3.bin"}]},
                      "args[1] of log_file must be a plain file name, got '../../../../escaped'"),
    "../ key": ({"seq": 1, "kind": "log_image", "args": ["../..", {"$bytes": "000001-1.bin"}, 0, "m"]},
                "args[0] of log_image (the key) must be names joined by '/'"),
    "unknown kind": ({"seq": 1, "kind": "exec", "args": ["import os"]}, "kind must be one of header, replayed, "),
    "metric not a number": ({"seq": 1, "kind": "log_metrics", "args": [{"loss": [1.0]}, 0]},
                            "args[0] of log_metrics must be a dict of str to numbers or strings"),
    "step not an int": ({"seq": 1, "kind": "log_metrics", "args": [{"loss": 1.0}, "0"]},
                        "args[1] of log_metrics must be int or None, got '0'"),
    "params not a dict": ({"seq": 1, "kind": "log_hyperparams", "args": [["lr", 1]]},
                          "args[0] of log_hyperparams must be a dict with str keys"),
    "status not a str": ({"seq": 1, "kind": "finalize", "args": [0]}, "args[0] of finalize must be str, got 0"),
    "seq not an int": ({"seq": "1", "kind": "finalize", "args": ["success"]}, "seq must be a positive int, got '1'"),
    "not an object": ([1, 2, 3], "a record must be a JSON object"),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_spool_is_refused_with_one_clear_line(workdir, name):
    record, message = CRAFTED[name]
    (workdir / OUTSIDE).write_text("secret")
    path = craft(workdir, record, blob="000001-3.bin" if "file name" in name else "000001-1.bin" if "key" in name else None)
    before = sorted(p for p in workdir.rglob("*"))
    with pytest.raises(ValueError) as e:
        replay(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"spool {path}, line 2: ") and message in msg, msg
    assert sorted(p for p in workdir.rglob("*")) == before  # nothing written anywhere (nor the run rebuilt)
    assert not (workdir.parent / "escaped.json").exists() and not list(workdir.parent.glob("*escaped*"))


def test_a_blob_that_links_out_of_the_spool_is_refused(workdir):
    (workdir / OUTSIDE).write_text("secret")
    path = craft(workdir, {"seq": 1, "kind": "log_file", "args": ["run", "m", "json", {"$bytes": "000001-3.bin"}]})
    path.with_suffix("").mkdir(exist_ok=True)
    (path.with_suffix("") / "000001-3.bin").symlink_to(workdir / OUTSIDE)
    with pytest.raises(ValueError, match=r"line 2: args\[3\] of log_file names '000001-3.bin', which leads out of"):
        replay(path)
    assert not (workdir / "logs" / "run" / "version_0" / "run_m.json").exists()


def test_a_file_that_is_no_spool_is_refused(workdir):
    p = workdir / "notes.jsonl"
    p.write_text('{"seq": 1, "kind": "finalize", "args": ["success"]}\n')
    with pytest.raises(ValueError, match="no header line; this is no autotimm spool"): replay(p)


FOUR = [LoggerConfig("tensorboard", {"save_dir": "logs", "log_graph": True}), LoggerConfig("csv", {"save_dir": "logs"}),
        LoggerConfig("wandb", {"project": "p", "offline": True, "save_dir": "wandb"}),
        LoggerConfig("mlflow", {"experiment_name": "e", "save_dir": "mlruns"})]


def test_guarded_loggers_are_lightning_loggers_with_keyword_arguments(workdir):
    tb, csv, wb, mlf = LoggerManager(FOUR).loggers
    for lg, cls in zip((tb, csv, wb, mlf), (TensorBoardLogger, CSVLogger, WandbLogger, MLFlowLogger)):
        assert isinstance(lg, cls) and isinstance(lg, Logger) and lightning_class(lg) is cls
        assert type(lg).__name__ == cls.__name__ and type(lg).__module__ == "autotimm.delivery"
        assert type(lg).log_metrics.__qualname__ == "DeliveryMixin.log_metrics"  # a real method, not a lambda
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackendWarning)  # any failure below would be a test failure, not a spooled event
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit.trace, which Lightning's log_graph uses
        tb.log_graph(model=tiny_classifier(), input_array=torch.zeros(1, 3, 32, 32))  # keywords reach Lightning's method
        tb.log_hyperparams({"lr": 0.1}, metrics={"val/loss": 0.0})
        tb.save()
        tb.after_save_checkpoint(checkpoint_callback=None)
        tb.finalize(status="success")
    assert len(tensorboard_run(tb.log_dir).Graph().node) > 10  # TensorBoard's reader finds the model's graph
    assert delivery_of(tb).counts()["spooled"] == 0 and delivery_of(tb).delivered == 1  # finalize; the rest are calls


def test_guarded_loggers_pickle_copy_and_unpickle_in_a_fresh_process(workdir):
    tb, csv, mlf = LoggerManager(FOUR[:2] + FOUR[3:]).loggers  # W&B's own logger refuses pickling once its run started
    for lg in (tb, csv, mlf):
        for clone in (pickle.loads(pickle.dumps(lg)), copy.deepcopy(lg)):
            assert type(clone) is type(lg) and delivery_of(clone).logger is clone and delivery_of(clone) is not delivery_of(lg)
            assert delivery_of(clone).counts() == delivery_of(lg).counts()
    csv.log_metrics({"loss": 0.5}, step=0)
    (workdir / "csv.pkl").write_bytes(pickle.dumps(csv))
    code = ("import pickle, sys; lg = pickle.load(open('csv.pkl', 'rb')); "
            "lg.log_metrics({'loss': 0.25}, step=1); lg.finalize('success'); "
            "print(type(lg).__name__, type(lg).__mro__[2].__name__, lg._delivery.counts()['delivered'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=workdir)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["CSVLogger", "CSVLogger", "3"]  # its counts came along: 1 here + 2 there
    assert csv_metrics(csv.log_dir)["loss"].tolist() == [0.5, 0.25]
    wlg = LoggerManager(FOUR[2:3]).loggers[0]  # not started yet: W&B's logger pickles, and so does the guarded one
    assert type(pickle.loads(pickle.dumps(wlg))) is type(wlg)
