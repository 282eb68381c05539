__version__ = "0.1.0"

# Public names, imported on first use so that `import autotimm` stays light (no torch, no backend).
_LAZY = {
    "LoggerConfig": "autotimm.config", "LoggingConfig": "autotimm.config", "MetricConfig": "autotimm.config",
    "LoggerManager": "autotimm.loggers",
    "list_backends": "autotimm.backends", "get_backend": "autotimm.backends", "register_backend": "autotimm.backends",
    "Backend": "autotimm.backends", "Param": "autotimm.backends",
    "BackendError": "autotimm.delivery", "BackendWarning": "autotimm.delivery", "replay": "autotimm.loggers",
    "plot_confusion_matrix": "autotimm.plots",
    "ImageDataModule": "autotimm.data",
    "ImageClassifier": "autotimm.model",
    "AutoTrainer": "autotimm.trainer",
    "LoggerForm": "autotimm.form",
    "show_confusion_matrix": "autotimm.confusion", "ConfusionMatrixViewer": "autotimm.confusion",
    "find_runs": "autotimm.runs", "load_run": "autotimm.runs", "compare_runs": "autotimm.runs", "Run": "autotimm.runs",
    "copy_run": "autotimm.runs", "log_image": "autotimm.media", "log_table": "autotimm.media", "log_artifact": "autotimm.media",
}
__all__ = list(_LAZY)

def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autotimm' has no attribute {name!r}")

def __dir__(): return sorted(list(globals()) + __all__)

def load_ipython_extension(ipython):
    "`%load_ext autotimm`: register the `%autotimm` magics."
    from autotimm.magics import load_ipython_extension as load
    load(ipython)
