"""`import autotimm` stays light: no logging backend, no pyplot, no torch until a name needs them."""
import subprocess
import sys


def test_import_autotimm_imports_no_backend():
    code = ("import sys, autotimm; from autotimm import LoggerConfig, LoggingConfig, MetricConfig; "
            "LoggerConfig('wandb', {'project': 'p'}); "
            "print(sorted(m for m in ('wandb', 'mlflow', 'tensorboard', 'matplotlib.pyplot', 'torch', 'pytorch_lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_form_layer_imports_no_lightning():
    "The logger form and LoggerManager's module (with the delivery layer) load without torch or Lightning."
    code = ("import sys, autotimm.form, autotimm.loggers, autotimm.delivery; "
            "print(sorted(m for m in ('wandb', 'mlflow', 'tensorboard', 'torch', 'pytorch_lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves():
    "Each name of the lazy `__init__` imports (a typo there would only show when a user first asks for it)."
    import autotimm
    missing = [n for n in autotimm.__all__ if getattr(autotimm, n, None) is None]
    assert missing == []
    from autotimm import BackendError, BackendWarning, replay
    assert issubclass(BackendWarning, UserWarning) and issubclass(BackendError, RuntimeError) and callable(replay)


def _library_lines():
    "`(module, line number, line)` of every library module outside the `backends` package (and `_modidx`)."
    from pathlib import Path
    import autotimm
    root = Path(autotimm.__file__).parent
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root)
        if rel.parts[0] == "backends" or rel.name == "_modidx.py": continue
        for i, line in enumerate(p.read_text().splitlines(), 1): yield str(rel), i, line


def test_backend_names_live_in_the_backends_package_only():
    "A backend is one plug-in: outside `autotimm/backends/` (and the demo's configs in `cli.py`) no library module names one."
    import re
    from autotimm.backends import list_backends
    pattern = re.compile(r"[\"'](" + "|".join(list_backends()) + r")[\"']")
    hits = [f"{m}:{i}" for m, i, line in _library_lines() if m != "cli.py" and pattern.search(line)]
    assert hits == []


def test_backend_params_other_code_needs_are_asked_for_by_role():
    "A backend's folder and server params are known by their role (`Param.role`): no module outside the backends names one."
    import re
    from autotimm.backends import get_backend, list_backends
    names = {p.name for b in list_backends() for p in get_backend(b).params if p.role} | {"lightning_logs"}
    assert {"save_dir", "tracking_uri", "dir", "offline_directory", "artifact_location"} <= names
    pattern = re.compile(r"[\"'](" + "|".join(sorted(names)) + r")[\"']")
    hits = [f"{m}:{i}: {line.strip()[:80]}" for m, i, line in _library_lines() if m != "cli.py" and pattern.search(line)]
    assert hits == []


def test_no_import_cycles():
    "Each module imports only from the layers before it: the graph of autotimm's own imports has no cycle."
    import ast
    from pathlib import Path
    import autotimm
    root = Path(autotimm.__file__).parent
    def name(p): return ".".join(("autotimm",) + p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
    graph = {}
    for p in root.rglob("*.py"):
        me, deps = name(p), set()
        pkg = me if p.name == "__init__.py" else me.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                target = f"{base}.{node.module}" if node.module else base
                deps |= {target} if node.module else {f"{base}.{a.name}" for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("autotimm"): deps.add(node.module)
            elif isinstance(node, ast.Import): deps |= {a.name for a in node.names if a.name.startswith("autotimm")}
        graph[me] = {d for d in deps if d != me}
    modules = set(graph)
    graph = {m: {d if d in modules else d.rsplit(".", 1)[0] for d in ds} & modules for m, ds in graph.items()}
    graph["autotimm"] = set()  # the lazy `__init__` names every module for users; no module imports it
    cycles, state = [], {}
    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open": cycles.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state: visit(d, path + [d])
        state[m] = "done"
    for m in sorted(graph):
        if m not in state: visit(m, [m])
    assert cycles == []
