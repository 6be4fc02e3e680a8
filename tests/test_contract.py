"""fuselip.contract: the real models meet the protocols that their callers check at run time, and the helpers."""
import pytest
import torch

import fuselip_helpers as H
from fuselip.baselines import build_baseline
from fuselip.config import LateFusionConfig
from fuselip.contract import (Compactable, Configured, ImageTower, ModeSwitch, TensorExport, TensorImport, Tokenizer,
                              check_sides, eval_mode, saved_tensors)
from fuselip.tokenizers.titok_official import OfficialTiTok, OfficialTiTokConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_models_meet_the_runtime_protocols():
    fuselip = H.model()
    baseline = build_baseline(LateFusionConfig(kind="siglip-sf", width=32, layers=1, heads=2, context_length=16), 32)
    for model in (fuselip, baseline):
        assert all(isinstance(model, p) for p in (Compactable, Configured, ModeSwitch, TensorExport, TensorImport))
    assert fuselip.image_size == H.IMAGE and baseline.image_size == 32
    assert isinstance(baseline, ImageTower) and not isinstance(fuselip, ImageTower)
    assert isinstance(fuselip.tokenizer, Tokenizer) and fuselip.tokenizer.can_decode
    released = OfficialTiTok(OfficialTiTokConfig(image_size=32, patch_size=16, width=16, layers=1, heads=2,
                                                 num_latent_tokens=4, code_dim=4, codebook_size=8))
    assert isinstance(released, Tokenizer) and not released.can_decode
    # the released TiTok only exports: a checkpoint or the token cache reads its state dict, the same tensors
    assert isinstance(released, TensorExport) and not isinstance(released, TensorImport)
    assert saved_tensors(released).keys() == released.state_dict().keys()
    assert not isinstance(object(), (Compactable, Configured, ModeSwitch, TensorExport, Tokenizer))


def test_saved_tensors_prefers_the_export():
    tok = H.tokenizer()
    assert not any("usage_counts" in k for k in saved_tensors(tok))  # the export drops the train state
    assert any("usage_counts" in k for k in tok.state_dict())
    linear = torch.nn.Linear(2, 2)
    assert saved_tensors(linear).keys() == linear.state_dict().keys()
    with pytest.raises(TypeError, match="neither a torch module"):
        saved_tensors(object())


def test_eval_mode_restores_training_even_after_an_error():
    model = torch.nn.Linear(2, 2).train()
    with eval_mode(model):
        assert not model.training
    assert model.training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("inside")
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training  # an evaluating model stays in eval mode
    with eval_mode(object()):  # a stand-in with only `encode`: used as it is
        pass


def test_check_sides():
    assert check_sides(None, ["a", "b"]) == ([None, None], ["a", "b"])
    assert check_sides([1, None], [None, "b"]) == ([1, None], [None, "b"])
    with pytest.raises(ValueError, match="images, texts, or both"):
        check_sides(None, None)
    with pytest.raises(ValueError, match="sample 1 has neither"):
        check_sides([1, None], ["a", ""])
    with pytest.raises(ValueError, match="2 images but 3 texts"):
        check_sides([1, 2], ["a", "b", "c"])
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str"):
        check_sides(None, [3])
