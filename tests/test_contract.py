"""The backend contract: a backend defined only here, and each real one, goes through everything autotimm does with a
backend: the form, the manager, fit with the confusion matrix, interrupt, resume, failure with spool and replay, load_run.
Nothing outside this file knows the throw-away backend."""
import json
from pathlib import Path

import pytest
from pytorch_lightning import Callback
from pytorch_lightning.loggers import Logger

from autotimm import AutoTrainer, LoggerConfig, LoggerForm, LoggerManager, load_run
from autotimm.backends import Backend, Param, get_backend, list_backends, register_backend, unregister_backend
from autotimm.delivery import delivery_of, lightning_class
from autotimm.loggers import replay
from helpers import ctrl_c, digits, local_params, tiny_classifier


class FolderLogger(Logger):
    "A minimal Lightning logger: one JSON line per metric row in `save_dir/name/metrics.jsonl`."
    def __init__(self, save_dir, name="run", fail=False):
        super().__init__()
        self._save_dir, self._name, self.fail = str(save_dir), name, fail
    @property
    def name(self): return self._name
    @property
    def version(self): return ""
    @property
    def save_dir(self): return self._save_dir
    @property
    def log_dir(self): return str(Path(self._save_dir)/self._name)
    @property
    def experiment(self):
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        return self
    def _write(self, record):
        if FolderLogger.broken: raise ConnectionError("the folder backend is down")
        with open(Path(self.experiment.log_dir)/"metrics.jsonl", "a") as f: f.write(json.dumps(record) + "\n")
    def log_metrics(self, metrics, step=None): self._write({"step": step, **{k: float(v) for k, v in metrics.items()}})
    def log_hyperparams(self, params, *args, **kwargs):
        if FolderLogger.broken: raise ConnectionError("the folder backend is down")
        p = Path(self.experiment.log_dir)/"hparams.json"
        old = json.loads(p.read_text()) if p.exists() else {}
        p.write_text(json.dumps({**old, **{k: v for k, v in dict(params).items()}}, default=str))
FolderLogger.broken = False


class FolderBackend(Backend):
    name, title, logger_class = "folder", "Folder", "FolderLogger"
    # its folder param is not called save_dir: other code finds it by its role
    params = (Param("root", (str,), "a path (str)", required=True, form="str", default="folder-runs", role="folder"),
              Param("name", (str,), "a string", form="str", default=""))
    def build(self, params): return FolderLogger(params["root"], **{k: v for k, v in params.items() if k != "root"})
    def run_ids(self, logger): return {"name": logger.name, "dir": str(Path(logger.log_dir).resolve())}
    def resume_params(self, ids, step=None): return {"name": ids["name"]} if ids.get("name") else {}
    def close(self, logger, status="success"):
        (Path(logger.experiment.log_dir)/"status.json").write_text(json.dumps({"status": status}))
        return f"status {status}"
    def find(self, root): return sorted(p.parent for p in Path(root).rglob("metrics.jsonl"))
    def read(self, location, run=None):
        d = Path(location)
        if not (d/"metrics.jsonl").is_file(): return None
        points = []
        for line in (d/"metrics.jsonl").read_text().splitlines():
            r = json.loads(line)
            points += [(r["step"], k, v) for k, v in r.items() if k != "step"]
        from autotimm.backends import counts_from_files
        status = json.loads((d/"status.json").read_text())["status"] if (d/"status.json").exists() else None
        return {"name": d.name, "location": str(d), "points": points,
                "hparams": json.loads((d/"hparams.json").read_text()) if (d/"hparams.json").exists() else {},
                "confusion_matrices": counts_from_files(sorted(d.glob("val_confusion_matrix_epoch_*.json"))), "status": status}


@pytest.fixture
def folder_backend():
    register_backend(FolderBackend())
    yield
    unregister_backend("folder")


PARAMS = {"folder": {"root": "runs"},  # the params each contract run uses (local, offline, in the test's folder)
          **{name: local_params(name, "runs", "contract") for name in list_backends()}}
KW = dict(live=False, enable_progress_bar=False, enable_model_summary=False, limit_train_batches=4, limit_val_batches=2,
          log_every_n_steps=1, checkpoint_monitor="val/loss")


def read_back(name):
    "The run of backend `name` under ./runs, read through the registry as `load_run` does."
    spec = get_backend(name)
    (loc,) = spec.find(Path("runs")) if name != "wandb" else spec.find(Path("runs"))[-1:]
    return load_run(loc)


class Outage(Callback):
    "The backend is down from the second epoch on (its logger raises), and back once fit ends."
    def __init__(self, logger_of): self.logger_of = logger_of
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1: self._break(trainer, True)
    def _break(self, trainer, on):
        lg = self.logger_of(trainer)
        FolderLogger.broken = on if isinstance(lg, FolderLogger) else FolderLogger.broken
        if not isinstance(lg, FolderLogger):  # a real backend: its logger class raises, as a dead connection would
            cls = lightning_class(lg)
            if on:
                Outage.saved = cls.log_metrics
                def down(self, *a, **k): raise ConnectionError("backend down")
                cls.log_metrics = down
            elif hasattr(Outage, "saved"):
                cls.log_metrics = Outage.saved; del Outage.saved


@pytest.mark.parametrize("name", ["folder", *list_backends()])  # every registered backend, and a throwaway one
def test_backend_contract(workdir, folder_backend, name, capsys):
    # the form shows the backend's fields from the registry and builds its config
    form = LoggerForm()
    section = form.sections[name]
    section.enabled.value = True
    for k, v in PARAMS[name].items():
        if k in section.fields: section.fields[k][1].value = v
    cfg = next(c for c in form.to_configs() if c.backend == name)
    cfg = LoggerConfig(name, {**cfg.params, **PARAMS[name]})
    # the manager and fit, with the confusion matrix
    manager = LoggerManager([cfg])
    trainer = AutoTrainer(max_epochs=2, logger=manager, callbacks=[ctrl_c(epoch=1, batch=0)], **KW)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(tiny_classifier(), datamodule=digits())
    assert "training interrupted at epoch 2" in capsys.readouterr().out
    run = read_back(name)
    assert run.status in ("interrupted", "failed", None) and 0 in run.confusion_matrices
    # resume from last.ckpt: the same run goes on to epoch 3
    again = AutoTrainer(max_epochs=3, logger=LoggerManager([cfg]), **KW)
    again.fit(tiny_classifier(), datamodule=digits(), ckpt_path=trainer.last_checkpoint)
    run = read_back(name)
    epochs = sorted(run.confusion_matrices)
    assert epochs[-1] == 2, epochs
    val = run.scalars("val/loss")
    assert len(val) >= 2 and [s for s, _ in val] == sorted(s for s, _ in val)
    # failure: down for epochs 2-3 of a new run, spooled, then replayed
    FolderLogger.broken = False
    m = LoggerManager([cfg])
    third = AutoTrainer(max_epochs=3, logger=m, callbacks=[Outage(lambda t: m.loggers[0])], **KW)
    with pytest.warns(Warning):
        third.fit(tiny_classifier(), datamodule=digits())
    Outage(lambda t: m.loggers[0])._break(third, False)
    d = delivery_of(m.loggers[0])
    if d.pending: replay(d.spool.path)
    runs = [load_run(loc) for loc in get_backend(name).find(Path("runs"))]
    mine = [r for r in runs if r.name == m.run_name or m.run_name in str(r.location)]
    assert mine, [r.name for r in runs]
    assert len(mine[-1].scalars("val/loss")) == 3, mine[-1].scalars("val/loss")
