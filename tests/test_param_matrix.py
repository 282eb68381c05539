"""The bad-input matrix: every param of every registered backend, given a value of the wrong type and (where the param
has choices, a minimum, a pattern or typed items) a wrong value, fails at `LoggerConfig(...)` with a message naming
`params['<name>']`, before anything is written."""
import os

import pytest

from autotimm import LoggerConfig, LoggingConfig, MetricConfig, list_backends
from autotimm.backends import get_backend

BASE = {"tensorboard": {"save_dir": "logs"}, "csv": {"save_dir": "logs"}, "wandb": {"project": "p", "offline": True},
        "mlflow": {"experiment_name": "e"}, "comet": {"project": "p"}}


class Odd:
    "A value of no type any param takes (except 'any value')."


def wrong_type(p):
    return None if object in p.types else Odd()


def wrong_values(p):
    "`[(label, value)]` that have the right type but a wrong value."
    out = []
    if p.choices and str in p.types: out.append(("not a choice", "no-such-choice"))
    if p.min is not None:
        num = int if int in p.types and float not in p.types else float
        out.append(("below the minimum", num(p.min) - 1))
        if float in p.types: out += [("infinite", float("inf")), ("not a number", float("nan"))]
    if p.pattern: out.append(("not the id's shape", "has/a slash and spaces ?#%"))
    if p.items is not None:
        out.append(("an item of the wrong type", {"k": Odd()} if dict in p.types else [Odd()]))
    return out


def cases():
    out = []
    for b in list_backends():
        for p in get_backend(b).params:
            if (v := wrong_type(p)) is not None: out.append(pytest.param(b, p.name, v, TypeError, id=f"{b}-{p.name}-wrong type"))
            for label, v in wrong_values(p):
                out.append(pytest.param(b, p.name, v, (TypeError, ValueError), id=f"{b}-{p.name}-{label}"))
    return out


CASES = cases()


def test_the_matrix_covers_every_param_of_every_backend():
    covered = {(c.values[0], c.values[1]) for c in CASES}
    params = {(b, p.name) for b in list_backends() for p in get_backend(b).params if object not in p.types}
    assert params <= covered and len(CASES) >= 100, (params - covered, len(CASES))


@pytest.mark.parametrize("backend,name,value,exc", CASES)
def test_every_param_is_checked_before_anything_is_written(workdir, backend, name, value, exc):
    with pytest.raises(exc) as e:
        LoggerConfig(backend, {**BASE[backend], name: value})
    assert f"params[{name!r}]" in str(e.value), str(e.value)
    assert os.listdir(workdir) == []


@pytest.mark.parametrize("make,exc,text", [
    (lambda: LoggerConfig("tensorboard", {"save_dir": "logs", "flush_secs": "x"}), TypeError, "params['flush_secs']"),
    (lambda: LoggerConfig("wandb", {"project": "p", "tags": 1}), TypeError, "params['tags']"),
    (lambda: LoggerConfig("mlflow", {"experiment_name": "e", "run_id": "deadbeef"}), ValueError, "params['run_id']"),
    (lambda: LoggingConfig(system_metrics_interval=float("inf")), ValueError, "system_metrics_interval must be"),
    (lambda: MetricConfig(name="loss", metric_class="Accuracy"), ValueError, "name 'loss' is taken"),
], ids=["tensorboard flush_secs='x'", "wandb tags=1", "mlflow run_id='deadbeef'", "system_metrics_interval=inf", "metric named loss"])
def test_the_cases_the_issue_names(workdir, make, exc, text):
    with pytest.raises(exc, match=None) as e:
        make()
    assert text in str(e.value), str(e.value)
    assert os.listdir(workdir) == []
