"""Pretrained weights with the Hugging Face hub out of reach: taken from the local cache through huggingface_hub's and
timm's public API (no library setting changed), or a clear error at once when the cache does not hold them."""
import pytest
import timm
import torch
from huggingface_hub import constants

from autotimm import ImageClassifier


def cache_with(cache, name, state_dict):
    "A Hugging Face cache holding `name`'s weights, laid out as huggingface_hub lays out what it downloads."
    from safetensors.torch import save_file
    repo = timm.models.get_pretrained_cfg(name).hf_hub_id
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(snapshot / "model.safetensors"))


@pytest.fixture
def hub_out_of_reach(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_cached_weights_are_used_when_the_hub_is_out_of_reach(hub_out_of_reach, monkeypatch):
    offline = constants.HF_HUB_OFFLINE
    weights = timm.create_model("test_resnet", pretrained=False).state_dict()
    cache_with(hub_out_of_reach, "test_resnet", weights)
    seen, create = [], timm.create_model
    def watched(*args, **kwargs):  # what huggingface_hub's process-wide setting is while timm builds the model
        seen.append(constants.HF_HUB_OFFLINE)
        return create(*args, **kwargs)
    monkeypatch.setattr(timm, "create_model", watched)
    m = ImageClassifier(backbone="test_resnet", num_classes=10)  # pretrained=True is the default
    assert seen == [offline]  # no library setting is changed for the whole process, not even for a moment
    got = m.model.state_dict()
    stem = next(k for k in weights if k.endswith("weight") and weights[k].dim() == 4)
    assert torch.equal(got[stem], weights[stem])  # the cached file's weights, not a fresh random start
    assert got[[k for k in got if k.endswith("weight")][-1]].shape[0] == 10  # with its own 10-class head
    assert constants.HF_HUB_OFFLINE == offline  # huggingface_hub's settings as they were


def test_weights_not_in_the_cache_fail_at_once_naming_the_fix(hub_out_of_reach):
    with pytest.raises(RuntimeError, match="not in the local cache .* Pass pretrained=False"):
        ImageClassifier(backbone="test_resnet", num_classes=10)
