"""Reading a run's configuration: from mappings (type-checked), named presets stored as JSON data, and command-line
overrides. The settings themselves, with their defaults and meanings, are the dataclasses of fuselip/settings.py.

A run is described by one `RunConfig` whose sections are those dataclasses; its encoder is a FuseLIPConfig or a
LateFusionConfig, by its `kind` (an encoder section written before the two were separate loads too). Four families of runs read it,
each only its own part (FAMILY_FIELDS): a tokenizer run (tokenizer, the image pool, train), a FuseLIP run (the
tokenizer it reads, its encoder, the pair data, train), a baseline run (a late-fusion encoder, the pair data,
train) and an MAE run (the ViT of a baseline encoder, mae, the image pool, train). Presets live as JSON files in
`fuselip/presets/<family>/<name>.json`, hold only values that differ from the dataclass defaults and only fields of
their family; a FuseLIP preset names its tokenizer (`tokenizer_preset`, `tokenizer_checkpoint`) instead of copying
its settings. Command lines never mirror flags by hand: `add_override_arguments(parser, family)` generates
`--section.field=value` for every field of the family, and `from_dict` rejects unknown keys, wrong types and
values outside a field's `Literal` choices with a message that names the key: a config is checked once, when it
is made, and the code that reads it trusts it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal

from fuselip.settings import (ENCODERS, REMOVED_FIELDS, REMOVED_FIELDS_LAST_AT, Checked, ConfigError, DataConfig,
                              EncoderConfig, FuseLIPConfig, LateFusionConfig, MAEConfig, RunConfig, TokenizerConfig,
                              TrainConfig)

__all__ = ["ConfigError", "Checked", "TokenizerConfig", "EncoderConfig", "FuseLIPConfig", "LateFusionConfig",
           "DataConfig", "TrainConfig", "MAEConfig",
           "RunConfig", "REMOVED_FIELDS", "REMOVED_FIELDS_LAST_AT", "FAMILY_FIELDS", "TOKENIZER_PRESET_KEY",
           "family_fields", "from_dict", "to_dict", "preset_names", "load_preset", "add_override_arguments",
           "apply_overrides", "config_errors_exit", "dump"]

PRESET_DIR = Path(__file__).parent / "presets"


# ---------------------------------------------------------------------------------------------
# families: what each kind of run reads. Its presets and its command line hold nothing else; a field that is not
# the family's keeps its default (e.g. a FuseLIP run has no vision_patch_size, a tokenizer run no train_pairs).

FUSELIP_ENCODER = tuple(f.name for f in dataclasses.fields(FuseLIPConfig))
LATE_FUSION_ENCODER = tuple(f.name for f in dataclasses.fields(LateFusionConfig))
VIT_ENCODER = ("kind", "width", "layers", "heads", "mlp_ratio", "vision_patch_size", "vision_stem", "embed_dim")
POOL_DATA = ("worlds", "world_weights", "image_size", "objects", "seed", "tokenizer_images", "tokenizer_val_images",
             "csv", "image_folder")  # an image pool (tokenizers, the MAE)
PAIR_DATA = tuple(f.name for f in dataclasses.fields(DataConfig)
                  if f.name not in ("tokenizer_images", "tokenizer_val_images", "csv", "image_folder"))
ALL_FIELDS = None
FAMILY_FIELDS: dict[str, dict[str, tuple[str, ...] | None]] = {  # family -> {section: its fields (None: all)}
    "tokenizer": {"tokenizer": ALL_FIELDS, "data": POOL_DATA, "train": ALL_FIELDS},
    "fuselip": {"tokenizer_checkpoint": ALL_FIELDS, "tokenizer": ALL_FIELDS, "encoder": FUSELIP_ENCODER,
                "data": PAIR_DATA, "train": ALL_FIELDS},  # tokenizer: what an "untrained" tokenizer is built from
    "baseline": {"encoder": LATE_FUSION_ENCODER, "data": PAIR_DATA, "train": ALL_FIELDS},
    "mae": {"encoder": VIT_ENCODER, "mae": ALL_FIELDS, "data": POOL_DATA, "train": ALL_FIELDS},
}
TOKENIZER_PRESET_KEY = "tokenizer_preset"  # a FuseLIP preset's name for the tokenizer preset it reads images with


def family_fields(family: str) -> list[str]:
    """The dotted leaf fields a family's runs read, e.g. "encoder.width", "tokenizer_checkpoint"."""
    if family not in FAMILY_FIELDS:
        raise ConfigError(f"no run family {family!r}; families: {', '.join(FAMILY_FIELDS)}")
    sections = FAMILY_FIELDS[family]
    out = []
    for name, _ in _leaf_fields(RunConfig):
        section, _, leaf = name.partition(".")
        if section in sections and (sections[section] is None or leaf in (sections[section] or ())):
            out.append(name)
    return out


def _check_family(data: dict, family: str, where: str) -> None:
    """A ConfigError naming the first setting in `data` (a preset's JSON) that the family does not read."""
    allowed = set(family_fields(family))
    for key, value in data.items():
        names = [f"{key}.{leaf}" for leaf in value] if isinstance(value, dict) and key != "tokenizer_checkpoint" \
            else [key]
        for name in names:
            if name not in allowed:
                raise ConfigError(f"{where}: {name} is not a setting of a {family} run (fuselip.config.FAMILY_FIELDS)")


# ---------------------------------------------------------------------------------------------
# dict <-> dataclass, with type checking


def _check_value(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(annotation) or _sections_of(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a section (object), got {value!r}")
        cls = annotation if dataclasses.is_dataclass(annotation) else _section_for(annotation, value, where)
        return from_dict(cls, value, where)
    if origin is list:
        (inner,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_value(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_type, val_type = typing.get_args(annotation)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {_check_value(k, key_type, where): _check_value(v, val_type, f"{where}.{k}")
                for k, v in value.items()}
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {annotation!r}")


def _sections_of(annotation: Any) -> tuple[type, ...]:
    """The section classes of a union annotation (a run's encoder: FuseLIPConfig | LateFusionConfig), else ()."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    return args if args and all(dataclasses.is_dataclass(a) for a in args) else ()


def _section_for(annotation: Any, value: dict, where: str) -> type:
    """Which class of a union a mapping is, by its `kind` (absent: the first class's default kind)."""
    classes = _sections_of(annotation)
    kind = value.get("kind", dataclasses.fields(classes[0])[0].default)  # `kind` is every section's first field
    for cls in classes:
        if kind in typing.get_args(typing.get_type_hints(cls)["kind"]):
            return cls
    kinds = [k for cls in classes for k in typing.get_args(typing.get_type_hints(cls)["kind"])]
    raise ConfigError(f"{where}.kind: must be one of {', '.join(map(repr, kinds))}, got {kind!r}")


def _drop_foreign(cls, data: dict, where: str) -> dict:
    """An encoder section written before FuseLIP and the late-fusion encoders had separate settings (a shipped
    checkpoint's config.json) holds the other family's fields too: at their defaults they are dropped; any other
    value is a ConfigError that names the field and whose it is."""
    for other in ENCODERS:
        if other is cls or not issubclass(cls, EncoderConfig):
            continue
        own = {f.name for f in dataclasses.fields(cls)}
        defaults = {f.name: f.default for f in dataclasses.fields(other) if f.name not in own}
        for key in sorted(set(data) & set(defaults)):
            if data[key] != defaults[key]:
                raise ConfigError(f"{where}.{key}".lstrip(".") + f" is a setting of {other.__name__} (encoder.kind "
                                  f"{', '.join(typing.get_args(typing.get_type_hints(other)['kind']))}), not of "
                                  f"{cls.__name__}; this config sets it to {data[key]!r}")
        data = {k: v for k, v in data.items() if k not in defaults}
    return data


def _drop_removed(cls, data: dict, where: str) -> dict:
    """`data` without the REMOVED_FIELDS of `cls` that hold their old default; a ConfigError for one that does not."""
    removed = {k: v for base in cls.__mro__ for k, v in REMOVED_FIELDS.get(base, {}).items()}
    for key in sorted(set(data) & set(removed)):
        value, default = data[key], removed[key]
        if value != default or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(f"{where}.{key}".lstrip(".") + f" was removed from fuselip (it changed no result); this "
                              f"config sets it to {value!r}, not its old default {default!r}: check out commit "
                              f"{REMOVED_FIELDS_LAST_AT} to rerun it")
    return {k: v for k, v in data.items() if k not in removed}


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass `cls` from a (possibly partial) dict; unknown keys and wrong types are errors, and so is a
    removed key (REMOVED_FIELDS) at any value but its old default, which is dropped."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    data = _drop_foreign(cls, _drop_removed(cls, data, where), where)
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(f'{where}.{k}'.lstrip('.') for k in unknown)}; "
                          f"known: {', '.join(sorted(names))}")
    kwargs = {k: _check_value(v, hints[k], f"{where}.{k}".lstrip(".")) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


# ---------------------------------------------------------------------------------------------
# presets


def preset_names(family: str) -> list[str]:
    return sorted(p.stem for p in (PRESET_DIR / family).glob("*.json"))


def load_preset(family: str, name: str) -> RunConfig:
    """The preset's values over the defaults. A FuseLIP preset's `tokenizer_preset` fills the tokenizer section from
    that tokenizer preset (what an untrained stand-in is built from; a trained checkpoint brings its own)."""
    path = PRESET_DIR / family / f"{name}.json"
    if not path.exists():
        raise ConfigError(f"no {family} preset named {name!r}; available: {', '.join(preset_names(family))}")
    with open(path) as f:
        data = json.load(f)
    tokenizer_preset = data.pop(TOKENIZER_PRESET_KEY, None) if family == "fuselip" else None
    _check_family(data, family, str(path.relative_to(PRESET_DIR.parent)))
    config = from_dict(RunConfig, data, "")
    if tokenizer_preset is not None:
        config.tokenizer = load_preset("tokenizer", tokenizer_preset).tokenizer
    return config


# ---------------------------------------------------------------------------------------------
# command-line overrides generated from the dataclasses


def _leaf_fields(cls, prefix: str = "", seen: set | None = None):
    """(dotted name, annotation) of every leaf field; a union section (the encoder) gives the fields of all its
    classes once each, `kind` with every choice."""
    seen = set() if seen is None else seen
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        if name in seen:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_fields(hints[f.name], name + ".", seen)
        elif _sections_of(hints[f.name]):
            base = EncoderConfig if all(issubclass(c, EncoderConfig) for c in _sections_of(hints[f.name])) else None
            for section in ((base,) if base else ()) + _sections_of(hints[f.name]):
                yield from _leaf_fields(section, name + ".", seen)
        else:
            seen.add(name)
            yield name, hints[f.name]


def _parse_leaf(text: str, annotation: Any, where: str) -> Any:
    if annotation is str:
        return text
    if typing.get_origin(annotation) is Literal:  # the choices are strings
        return _check_value(text, annotation, f"--{where}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        if annotation is bool and text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ConfigError(f"--{where}: cannot parse {text!r} as {getattr(annotation, '__name__', annotation)}")
    return _check_value(value, annotation, f"--{where}")


def add_override_arguments(parser: argparse.ArgumentParser, family: str | None = None) -> None:
    """Adds one `--section.field` option per leaf field that runs of `family` read (every field of RunConfig when
    None); values are parsed and type-checked by apply_overrides."""
    group = parser.add_argument_group(f"{family or 'config'} settings (generated from fuselip.config)")
    fields = set(family_fields(family)) if family is not None else None
    for name, annotation in _leaf_fields(RunConfig):
        if fields is not None and name not in fields:
            continue
        if typing.get_origin(annotation) is Literal:
            choices = typing.get_args(annotation)
            group.add_argument(f"--{name}", dest=f"override:{name}", default=None, metavar="|".join(choices),
                               help="one of " + ", ".join(choices))
            continue
        type_name = getattr(annotation, "__name__", str(annotation))
        group.add_argument(f"--{name}", dest=f"override:{name}", default=None, metavar=type_name.upper(),
                           help=f"{type_name} (JSON for lists and mappings)")


def apply_overrides(config: RunConfig, args: argparse.Namespace) -> RunConfig:
    hints = dict(_leaf_fields(RunConfig))
    data = to_dict(config)
    for key, text in vars(args).items():
        if not key.startswith("override:") or text is None:
            continue
        dotted = key.split(":", 1)[1]
        value = _parse_leaf(text, hints[dotted], dotted)
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return from_dict(RunConfig, data)


@contextlib.contextmanager
def config_errors_exit(parser: argparse.ArgumentParser):
    """For command lines: a ConfigError raised inside (a bad override, a setting naming nothing) ends the program
    with argparse's one-line `PROG: error: …` and exit status 2, not a traceback."""
    try:
        yield
    except ConfigError as e:
        parser.error(str(e))


def dump(config: RunConfig, family: str | None = None) -> str:
    """The config as JSON: every field, or only those a run of `family` reads (what its command line printed)."""
    data = to_dict(config)
    if family is not None:
        keep = set(family_fields(family))
        data = {section: ({k: v for k, v in values.items() if f"{section}.{k}" in keep}
                          if isinstance(values, dict) else values)
                for section, values in data.items()
                if section in keep or any(name.startswith(section + ".") for name in keep)}
    return json.dumps(data, indent=2, sort_keys=True)
