import json
import os
from pathlib import Path

import pytest
import torch

from fuselip import checkpoint as ck


@ck.register("test-linear")
class Linear(torch.nn.Linear):
    def __init__(self, n):
        super().__init__(n, n)
        self.n = n

    def config_dict(self):
        return {"n": self.n}

    @classmethod
    def from_config(cls, config):
        return cls(config["n"])


def test_round_trip_and_metrics(tmp_path):
    model = Linear(3)
    ck.save_model(model, tmp_path / "m", metrics={"acc": 0.5})
    loaded = ck.load_model(tmp_path / "m")
    assert isinstance(loaded, Linear) and loaded.metrics == {"acc": 0.5}
    torch.testing.assert_close(loaded.weight, model.weight, rtol=0, atol=0)
    assert not any(p.name.startswith("m.tmp-") for p in tmp_path.iterdir())


def _same_weights(a, b) -> bool:
    return a.state_dict().keys() == b.state_dict().keys() and all(
        torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_overwrite_is_atomic(tmp_path, monkeypatch):
    ck.save_model(Linear(3), tmp_path / "m")
    good = Linear(3)
    ck.save_model(good, tmp_path / "m")  # an overwrite replaces the folder
    assert _same_weights(ck.load_model(tmp_path / "m"), good)

    def half_written(tensors, filename, *args, **kwargs):  # the disk fills up halfway through the weights
        Path(filename).write_bytes(b"\x00" * 17)
        raise OSError("No space left on device")
    with monkeypatch.context() as m:
        m.setattr(ck, "save_file", half_written)
        with pytest.raises(OSError, match="No space"):
            ck.save_model(Linear(3), tmp_path / "m")
    assert _same_weights(ck.load_model(tmp_path / "m"), good)  # the old checkpoint, intact and loadable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]

    replace = os.replace

    def interrupted_swap(src, dst):  # the new folder fails to move into place after the old one moved aside
        if Path(dst) == tmp_path / "m" and Path(src).name.startswith("m.tmp-") and src != tmp_path / "m.tmp-old":
            raise OSError("interrupted")
        return replace(src, dst)
    with monkeypatch.context() as m:
        m.setattr(ck.os, "replace", interrupted_swap)
        with pytest.raises(OSError, match="interrupted"):
            ck.save_model(Linear(3), tmp_path / "m")
    assert _same_weights(ck.load_model(tmp_path / "m"), good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_mismatch_names_what_differs(tmp_path):
    ck.save_model(Linear(3), tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["n"] = 4
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ck.CheckpointError, match=r"weight: checkpoint has shape \(3, 3\), config builds \(4, 4\)"):
        ck.load_model(tmp_path / "m")


def test_bad_folders(tmp_path):
    with pytest.raises(ck.CheckpointError, match="not a checkpoint folder"):
        ck.load_model(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{oops")
    with pytest.raises(ck.CheckpointError, match="malformed JSON"):
        ck.read(tmp_path / "bad")
    (tmp_path / "bad" / "config.json").write_text('{"checkpoint_kind": "test-linear", "n": 3}')
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ck.CheckpointError, match="unreadable safetensors"):
        ck.read(tmp_path / "bad")
    (tmp_path / "bad" / "model.safetensors").unlink()
    ck.save(tmp_path / "bad", kind="nope", config={}, tensors={"x": torch.zeros(1)})
    with pytest.raises(ck.CheckpointError, match="unknown kind 'nope'"):
        ck.load_model(tmp_path / "bad")


def test_model_config_may_have_its_own_kind_field(tmp_path):
    ck.save(tmp_path / "m", kind="test-linear", config={"kind": "grid", "n": 2}, tensors={"x": torch.zeros(1)})
    read = ck.read(tmp_path / "m")
    assert read.kind == "test-linear" and read.config == {"kind": "grid", "n": 2}
