"""Read what each backend wrote, with each backend's own reader, as a user would find it."""
import glob
from pathlib import Path

import pandas as pd


def tensorboard_run(log_dir):
    "TensorBoard's own `EventAccumulator` over every event file of a run folder."
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def tensorboard_scalars(log_dir):
    "`{tag: [(step, value), ...]}` from TensorBoard's reader."
    acc = tensorboard_run(log_dir)
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def csv_metrics(log_dir):
    "metrics.csv of a CSVLogger run, read with pandas."
    return pd.read_csv(Path(log_dir) / "metrics.csv", float_precision="round_trip")  # exact on pandas 2 too


def csv_scalars(log_dir):
    "`{key: [(step, value), ...]}` from metrics.csv."
    df = csv_metrics(log_dir)
    return {c: [(int(s), float(v)) for s, v in zip(df["step"], df[c]) if pd.notna(v)]
            for c in df.columns if c not in ("epoch", "step")}


def mlflow_scalars(client, run_id):
    "`{key: [(step, value), ...]}` from an MLflow run through `MlflowClient`."
    run = client.get_run(run_id)
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in run.data.metrics}


def mlflow_artifacts(client, run_id, path=None):
    "Every artifact file path of an MLflow run."
    out = []
    for f in client.list_artifacts(run_id, path):
        out += mlflow_artifacts(client, run_id, f.path) if f.is_dir else [f.path]
    return out


class WandbRun:
    "An offline W&B run folder: history rows, config and media files, read from its `.wandb` file."
    def __init__(self, run_dir, wait:float=60.0, parts:list=None):
        "`parts`: the folders of one run id (a run continued after `fit`, by `test` or a resume), merged in order."
        import time
        from autotimm.backends import read_wandb_run  # W&B has no public reader for offline run files
        self.dir = Path(run_dir)
        self.history, self.config = [], {}
        for part in parts or [self.dir]:
            deadline = time.time() + wait
            while True:  # W&B's service process may still be writing the file when finish() returns
                run = read_wandb_run(part)
                if run["exit_code"] is not None or time.time() > deadline: break
                time.sleep(0.5)
            self.history += run["history"]; self.config.update(run["config"])
        self.exit_code = run["exit_code"]

    def scalars(self):
        "`{key: [(trainer/global_step, value), ...]}` for numeric keys."
        out = {}
        for row in self.history:
            for k, v in row.items():
                if isinstance(v, (int, float)) and not k.startswith("_") and k not in ("trainer/global_step", "epoch"):
                    out.setdefault(k, []).append((row.get("trainer/global_step"), v))
        return out

    def images(self, key):
        "Media files logged under image `key`, in order."
        return [self.dir / "files" / f for row in self.history for k, v in row.items()
                if k.startswith(key + "/filenames") or (k == key + "/filenames") for f in v]

    @staticmethod
    def find(save_dir):
        "One `WandbRun` per run id under `save_dir` (folders of the same id merged)."
        by_id = {}
        for r in sorted(glob.glob(f"{save_dir}/wandb/offline-run-*")):  # the id from run-<id>.wandb: W&B may add -1 to a folder's name
            ids = [Path(f).stem[len("run-"):] for f in glob.glob(f"{r}/run-*.wandb")]
            by_id.setdefault(ids[0] if ids else r.rsplit("-", 1)[-1], []).append(r)
        return [WandbRun(parts[0], parts=parts) for parts in by_id.values()]
