"""Declaring a configuration once: dataclass fields that carry their description and allowed values.

The node configs (config.py) are built from these fields; nodes declare ROS parameters from the
same fields and offline tools read YAML into them, so defaults, ranges and error texts exist once.
"""
from __future__ import annotations

import dataclasses
import difflib


class ConfigError(ValueError):
    """A configuration value the pipelines cannot run with; one line naming parameter, value and what is allowed."""


def param(default, description: str, *, range=None, choices=None):
    """A configuration field: default, one-line description, and an inclusive (lo, hi) range or choices."""
    return dataclasses.field(default=default, metadata={"description": description, "range": range,
                                                        "choices": tuple(choices) if choices else None})


def spec(f: dataclasses.Field) -> dict:
    return f.metadata


def describe(f: dataclasses.Field) -> str:
    """The description with its allowed values, as `ros2 param describe` and --help show it."""
    m = f.metadata
    extra = ""
    if m.get("choices"):
        extra = f" (one of: {', '.join(map(str, m['choices']))})"
    elif m.get("range"):
        extra = f" ({m['range'][0]} to {m['range'][1]})"
    return m["description"] + extra


def coerce(name: str, value, f: dataclasses.Field, where: str = ""):
    """`value` checked against field `f`: type (an int is accepted for a float), range, choices.
    Returns the value in the field's type; raises ConfigError naming parameter, value and the rule."""
    expected = type(f.default)
    at = f" in {where}" if where else ""
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise ConfigError(f"parameter '{name}'{at} is {value!r} ({type(value).__name__}); "
                          f"expected {expected.__name__}, e.g. {f.default!r}")
    rng, choices = f.metadata.get("range"), f.metadata.get("choices")
    if rng is not None and not (rng[0] <= value <= rng[1]):
        raise ConfigError(f"parameter '{name}'{at} is {value!r}; allowed: {rng[0]} to {rng[1]}")
    if choices is not None and value not in choices:
        raise ConfigError(f"parameter '{name}'{at} is {value!r}; allowed: {', '.join(map(str, choices))}")
    return value


def unknown_name_error(name: str, known, owner: str, where: str = "") -> ConfigError:
    """ConfigError for a parameter nobody declares, with the closest declared name."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; declared: {', '.join(sorted(known))}"
    at = f" (in {where})" if where else ""
    return ConfigError(f"parameter '{name}'{at} is not a parameter of {owner}{hint}")


def from_values(cls, values: dict, owner: str, where: str = "", ignore=()):
    """Build config `cls` from a name -> value dict (YAML block, ROS parameters); every value and
    every name is checked, then the config's own cross-field check runs."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        if name in ignore:
            continue
        if name not in fields:
            raise unknown_name_error(name, fields, owner, where)
        kwargs[name] = coerce(name, value, fields[name], where)
    cfg = cls(**kwargs)
    cfg.check()
    return cfg
