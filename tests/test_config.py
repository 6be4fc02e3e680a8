import argparse

import pytest

from fuselip import config as C


def test_every_preset_loads():
    for family in ("tokenizer", "fuselip", "baseline"):
        for name in C.preset_names(family):
            cfg = C.load_preset(family, name)
            assert isinstance(cfg, C.RunConfig)


def test_unknown_keys_and_wrong_types_are_errors():
    with pytest.raises(C.ConfigError, match="encoder.widht"):
        C.from_dict(C.RunConfig, {"encoder": {"widht": 3}})
    with pytest.raises(C.ConfigError, match="train.steps"):
        C.from_dict(C.RunConfig, {"train": {"steps": "many"}})
    with pytest.raises(C.ConfigError, match="no fuselip preset"):
        C.load_preset("fuselip", "enormous")


def test_overrides_are_generated_and_checked():
    parser = argparse.ArgumentParser()
    C.add_override_arguments(parser)
    args = parser.parse_args(["--train.steps=7", "--encoder.width", "128", "--data.worlds=[\"shapes\"]",
                              "--train.out_dir=runs/x", "--tokenizer.l2_codes=true"])
    cfg = C.apply_overrides(C.RunConfig(), args)
    assert (cfg.train.steps, cfg.encoder.width, cfg.data.worlds) == (7, 128, ["shapes"])
    assert cfg.train.out_dir == "runs/x" and cfg.tokenizer.l2_codes is True
    with pytest.raises(C.ConfigError, match="--train.steps"):
        C.apply_overrides(C.RunConfig(), parser.parse_args(["--train.steps=1.5"]))
    with pytest.raises(SystemExit):  # argparse: unknown flag
        parser.parse_args(["--train.stepz=3"])


def test_round_trip():
    cfg = C.RunConfig()
    assert C.from_dict(C.RunConfig, C.to_dict(cfg)) == cfg
