"""Cost of the notebook live view, measured inside a real Jupyter kernel.

Runs in one kernel, interleaved, the same short training with `live=True` and `live=False`, and prints the
live view's own seconds per epoch (what `LiveView.cost_s` records: progress refreshes, curve and confusion
matrix pictures, display messages), the ratio of epoch times with and without it, and the bytes per epoch it sent
to the front end (`LiveView.bytes_sent`: text at most once a second, pictures once an epoch).

    .venv/bin/python bench/live_view.py [--epochs 4] [--repeats 3]
"""
import argparse
import json

import nbformat
from nbclient import NotebookClient

CODE = """
import time, json, statistics
from pytorch_lightning import Callback
from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggingConfig
from autotimm.live import LiveView

class EpochTimer(Callback):  # start to start: every callback's epoch-end work is inside
    def on_train_epoch_start(self, *a): self.starts.append(time.perf_counter())
    def on_train_end(self, *a):
        self.starts.append(time.perf_counter())
        self.times = [b - a for a, b in zip(self.starts, self.starts[1:])]

def run(live):
    timer = EpochTimer(); timer.starts = []
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            logging_config=LoggingConfig(log_confusion_matrix=True))
    trainer = AutoTrainer(max_epochs={epochs}, logger=False, live=live, callbacks=[timer], enable_progress_bar=False,
                          enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=32, batch_size=32))
    view = next((c for c in trainer.callbacks if isinstance(c, LiveView)), None)
    if view: sent.append({{"bytes_per_epoch": view.bytes_sent / {epochs}, "picture_updates": view.picture_updates,
                           "text_updates": view.text_updates, "epochs": {epochs}}})
    return timer.times[1:], (view.cost_s[1:] if view else [])

sent = []
res = {{"live": [], "off": [], "cost": [], "sent": sent}}
for _ in range({repeats}):
    t, c = run(True); res["live"] += t; res["cost"] += c
    t, _ = run(False); res["off"] += t
print("RESULT" + json.dumps(res))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CODE.format(epochs=a.epochs, repeats=a.repeats))],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=1800, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    res = json.loads(text.split("RESULT", 1)[1].splitlines()[0])
    med = lambda xs: sorted(xs)[len(xs) // 2]
    live, off, cost = med(res["live"]), med(res["off"]), med(res["cost"])
    per_epoch = med([s["bytes_per_epoch"] for s in res["sent"]])
    print(f"epochs after the first, median of {len(res['off'])}: live view on {live:.3f} s, off {off:.3f} s, "
          f"ratio {live / off:.3f}; the live view's own cost {cost * 1000:.0f} ms per epoch ({cost / off:.1%} of an epoch); "
          f"sent to the front end: {per_epoch / 1000:.0f} KB per epoch (pictures {res['sent'][0]['picture_updates']} times "
          f"in {res['sent'][0]['epochs']} epochs, text {res['sent'][0]['text_updates']} times)")
    print(json.dumps({"epoch_s_live": live, "epoch_s_off": off, "ratio": live / off, "live_cost_s_per_epoch": cost,
                      "bytes_per_epoch": per_epoch, "sent": res["sent"]}))


if __name__ == "__main__":
    main()
