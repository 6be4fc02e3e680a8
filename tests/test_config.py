import argparse
import dataclasses
import json

import pytest

from fuselip import config as C


FAMILIES = ("tokenizer", "fuselip", "baseline", "mae")
# a few values per preset, as DESIGN.md's table states them
EXPECTED = {
    ("fuselip", "tiny"): {"encoder.width": 256, "encoder.layers": 4, "encoder.heads": 4, "tokenizer.kind": "grid",
                          "data.image_size": 64, "tokenizer_checkpoint": "checkpoints/tokenizer-grid-tiny"},
    ("fuselip", "small"): {"encoder.width": 384, "encoder.layers": 12, "encoder.heads": 6, "tokenizer.kind": "titok",
                           "tokenizer.num_latent_tokens": 128, "tokenizer.codebook_size": 4096, "data.image_size": 256},
    ("fuselip", "base"): {"encoder.width": 512, "encoder.layers": 12, "encoder.heads": 8,
                          "tokenizer.codebook_size": 8192, "data.image_size": 256},
    ("baseline", "tiny-sf"): {"encoder.kind": "siglip-sf", "encoder.layers": 4},
    ("baseline", "tiny-mlf"): {"encoder.kind": "siglip-mlf", "encoder.fusion_layers": 4},
    ("tokenizer", "tiny-titok"): {"tokenizer.kind": "titok", "tokenizer.num_latent_tokens": 32},
    ("mae", "tiny"): {"mae.mask_ratio": 0.75, "train.steps": 3000, "data.tokenizer_images": 16000},
}


def _value(data, dotted: str, missing):
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return missing
        data = data[key]
    return data


def test_every_preset_loads():
    """Every field of every preset (the mae recipes included) resolves to the preset file's value where the file
    sets it, to the named tokenizer preset's for a FuseLIP preset's tokenizer section, and to the dataclass default
    elsewhere; the named values are DESIGN.md's."""
    defaults, missing = C.to_dict(C.RunConfig()), object()
    seen = set()
    for family in FAMILIES:
        names = C.preset_names(family)
        assert names, family
        for name in names:
            raw = json.loads((C.PRESET_DIR / family / f"{name}.json").read_text())
            if C.TOKENIZER_PRESET_KEY in raw:
                named = C.PRESET_DIR / "tokenizer" / f"{raw.pop(C.TOKENIZER_PRESET_KEY)}.json"
                raw["tokenizer"] = json.loads(named.read_text())["tokenizer"]
            loaded = C.load_preset(family, name)
            resolved, encoder_defaults = C.to_dict(loaded), C.to_dict(type(loaded.encoder)())
            for field in C.family_fields(family):
                want = _value(raw, field, missing)
                if want is missing and field.startswith("encoder."):
                    want = _value({"encoder": encoder_defaults}, field, missing)
                want = _value(defaults, field, missing) if want is missing else want
                assert _value(resolved, field, missing) == want, (family, name, field)
            for field, value in EXPECTED.get((family, name), {}).items():
                assert _value(resolved, field, missing) == value, (family, name, field)
            seen.add((family, name))
    assert set(EXPECTED) <= seen


def test_presets_hold_only_differences_and_only_their_familys_fields():
    """A preset file is what its run changes: no value equal to the default, no setting its family does not read,
    and a FuseLIP preset names its tokenizer instead of copying a tokenizer section."""
    for family in FAMILIES:
        allowed = set(C.family_fields(family))
        for name in C.preset_names(family):
            raw = json.loads((C.PRESET_DIR / family / f"{name}.json").read_text())
            defaults = C.to_dict(C.RunConfig(encoder=type(C.load_preset(family, name).encoder)()))
            if family == "fuselip":
                assert "tokenizer" not in raw and raw[C.TOKENIZER_PRESET_KEY] in C.preset_names("tokenizer"), name
                raw.pop(C.TOKENIZER_PRESET_KEY)
            for section, values in raw.items():
                for key, value in (values.items() if isinstance(values, dict) else [(None, values)]):
                    field = f"{section}.{key}" if key is not None else section
                    assert field in allowed, (family, name, field)
                    if field != "encoder.kind":  # the one setting that says which encoder a section is
                        assert _value(defaults, field, None) != value, (family, name, field, "equals the default")


def test_a_preset_with_another_familys_setting_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "PRESET_DIR", tmp_path)
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "odd.json").write_text(json.dumps({"encoder": {"kind": "siglip-sf", "mmm_weight": 1.0}}))
    with pytest.raises(C.ConfigError, match="encoder.mmm_weight is not a setting of a baseline run"):
        C.load_preset("baseline", "odd")


def test_each_family_is_offered_only_its_own_fields():
    fuselip, baseline, tokenizer = (set(C.family_fields(f)) for f in ("fuselip", "baseline", "tokenizer"))
    assert "encoder.mmm_weight" in fuselip and "encoder.mmm_weight" not in baseline
    assert "encoder.vision_patch_size" in baseline and "encoder.vision_patch_size" not in fuselip
    assert "data.train_pairs" not in tokenizer and "data.tokenizer_images" not in fuselip
    assert not any(f.startswith(("tokenizer.", "mae.")) for f in baseline)
    parser = argparse.ArgumentParser()
    C.add_override_arguments(parser, "baseline")
    with pytest.raises(SystemExit):  # argparse: a FuseLIP setting is an unknown flag for a baseline run
        parser.parse_args(["--encoder.mmm_weight=1.0"])
    cfg = C.apply_overrides(C.load_preset("baseline", "tiny-sf"), parser.parse_args(["--encoder.vision_stem=conv"]))
    assert cfg.encoder.vision_stem == "conv"


def test_settings_with_fixed_choices_are_checked_once_when_made():
    """A Literal field is checked wherever a config is made: a file or mapping, a command line, or code."""
    with pytest.raises(C.ConfigError, match="train.precision: must be one of 'auto', 'bf16', 'fp32', got 'fp16'"):
        C.from_dict(C.RunConfig, {"train": {"precision": "fp16"}})
    parser = argparse.ArgumentParser()
    C.add_override_arguments(parser, "fuselip")
    with pytest.raises(C.ConfigError, match="--encoder.mmm_pass: must be one of 'shared', 'clean'"):
        C.apply_overrides(C.RunConfig(), parser.parse_args(["--encoder.mmm_pass=both"]))
    assert C.apply_overrides(C.RunConfig(), parser.parse_args(["--encoder.mmm_pass=clean"])).encoder.mmm_pass == "clean"
    with pytest.raises(C.ConfigError, match="encoder.vision_stem must be one of 'patch', 'conv', got 'stem'"):
        C.LateFusionConfig(vision_stem="stem")


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


def test_removed_keys_load_at_their_old_default_and_are_errors_otherwise():
    """Old configs (shipped checkpoints, runs' run_config.json) may hold a knob removed from the package: at the
    default it always had it is dropped; at any other value loading names it, says it was removed and where it was."""
    checkpoint = json.loads((C.PRESET_DIR.parents[1] / "checkpoints" / "fuselip-tiny" / "config.json").read_text())
    assert checkpoint["encoder"]["pos_init"] == "normal"  # a shipped checkpoint written before the removal
    assert C.from_dict(C.FuseLIPConfig, checkpoint["encoder"], "encoder").width == checkpoint["encoder"]["width"]
    for cls, removed in C.REMOVED_FIELDS.items():
        section = next(f.name for f in dataclasses.fields(C.RunConfig)
                       if f.type in (cls, cls.__name__) or (cls is C.EncoderConfig and f.name == "encoder"))
        for key, default in removed.items():
            assert key not in {f.name for f in dataclasses.fields(cls)}
            assert C.from_dict(C.RunConfig, {section: {key: default}}) == C.RunConfig()
            other = "grid2d" if isinstance(default, str) else (not default if isinstance(default, bool) else 0.5)
            with pytest.raises(C.ConfigError, match=rf"{section}\.{key} was removed .*{C.REMOVED_FIELDS_LAST_AT}"):
                C.from_dict(C.RunConfig, {section: {key: other}})
    with pytest.raises(C.ConfigError, match="data.position_size_questions was removed"):
        C.from_dict(C.DataConfig, {"position_size_questions": 0}, "data")  # not the boolean false


def test_a_runs_encoder_is_fuselips_or_a_late_fusion_ones_by_its_kind():
    """FuseLIP and the late-fusion baselines have separate encoder settings; an encoder section is one or the other
    by its kind. A config written when both lived in one section (every shipped checkpoint's) loads: the other
    family's fields at their defaults are dropped, at any other value they are an error naming them."""
    assert isinstance(C.load_preset("fuselip", "tiny").encoder, C.FuseLIPConfig)
    assert isinstance(C.load_preset("baseline", "tiny-mlf").encoder, C.LateFusionConfig)
    assert isinstance(C.RunConfig().encoder, C.FuseLIPConfig)
    root = C.PRESET_DIR.parents[1] / "checkpoints"
    for folder, cls in (("fuselip-tiny", C.FuseLIPConfig), ("siglip-sf-tiny", C.LateFusionConfig),
                        ("siglip-mlf-tiny", C.LateFusionConfig)):
        old = json.loads((root / folder / "config.json").read_text())["encoder"]
        assert "mmm_weight" in old and "vision_patch_size" in old  # written before the split
        assert type(C.from_dict(C.RunConfig, {"encoder": old}).encoder) is cls
    assert not hasattr(C.from_dict(C.RunConfig, {"encoder": {"kind": "siglip-sf"}}).encoder, "mmm_weight")
    with pytest.raises(C.ConfigError, match="encoder.vision_stem is a setting of LateFusionConfig .*not of FuseLIP"):
        C.from_dict(C.RunConfig, {"encoder": {"kind": "fuselip", "vision_stem": "conv"}})
    with pytest.raises(C.ConfigError, match="encoder.kind: must be one of 'fuselip', 'siglip-sf', 'siglip-mlf'"):
        C.from_dict(C.RunConfig, {"encoder": {"kind": "clip"}})


def test_a_run_prints_only_the_settings_of_its_family():
    cfg = C.load_preset("tokenizer", "tiny-grid")
    printed = json.loads(C.dump(cfg, "tokenizer"))
    assert set(printed) == {"tokenizer", "data", "train"} and "train_pairs" not in printed["data"]
    assert printed["tokenizer"] == C.to_dict(cfg.tokenizer)
    assert set(json.loads(C.dump(cfg))) == {f.name for f in dataclasses.fields(C.RunConfig)}
