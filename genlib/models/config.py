"""Model configs: dataclasses whose fields describe themselves.

Each field carries its help text, valid range, scale and choices as dataclass metadata::

    lr: float = setting(1e-3, "Adam learning rate", gt=0, log=True, typical=(1e-5, 1e-1))

``field_specs(VAEConfig)`` reads them back as ``FieldSpec`` rows (any dataclass declared with
``setting`` has them: ``genlib.train.TrainConfig`` too), and three readers share them, so they
cannot disagree: ``BaseConfig.validate`` (range and choices, checked generically), the CLI's
``--set key=value`` parsing (types, choices) and the dashboard's training form (widgets, ranges,
help). Rules that involve more than one field stay hand-written in ``validate``, each naming its
field. Every message reads ``field=value is invalid: must be <rule>``.
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
import typing
from typing import Any, ClassVar

KINDS = ("bool", "int", "float", "str", "tuple")


def setting(default: Any, help: str, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, log: bool = False,
            choices: tuple[str, ...] | None = None, typical: tuple[float, float] | None = None,
            from_data: bool = False) -> Any:
    """A config field with its metadata: ``field(default=..., metadata=dict(help=..., range=(lo, hi),
    ...))``. ``ge``/``gt`` and ``le``/``lt`` bound it (inclusive / exclusive, as in pydantic);
    ``log`` says the value is best varied on a log scale; ``typical`` is the span a form offers
    where the valid range is open-ended; ``from_data`` marks fields set from the dataset."""
    if ge is not None and gt is not None or le is not None and lt is not None:
        raise TypeError("give ge or gt, le or lt, not both")
    meta: dict[str, Any] = {"help": help, "log": log}
    low, high = (gt if ge is None else ge), (lt if le is None else le)
    if low is not None or high is not None:
        meta["range"] = (low, high)
        meta["open"] = (gt is not None, lt is not None)
    if choices is not None:
        meta["choices"] = tuple(choices)
    if typical is not None:
        meta["typical"] = tuple(typical)
    if from_data:
        meta["from_data"] = True
    return dataclasses.field(default=default, metadata=meta)


def inherit(base: type, name: str, default: Any) -> Any:
    """Redeclare ``base``'s field ``name`` with a new default and the same metadata (help, range)."""
    meta = next(f.metadata for f in dataclasses.fields(base) if f.name == name)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One config field as a form or a parser needs it.

    ``low``/``high``: the valid bounds (None = unbounded), exclusive where ``low_open``/``high_open``.
    ``typical``: the span to offer when a bound is missing (e.g. learning rates 1e-5..1e-1), inside
    the valid range. ``log``: vary on a log scale. ``choices``: the allowed strings, in order.
    ``from_data``: set from the dataset (shape, class count), not a hyperparameter.
    """

    name: str
    kind: str                       # one of KINDS
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[str, ...] | None = None
    help: str = ""
    low_open: bool = False
    high_open: bool = False
    typical: tuple[float, float] | None = None
    from_data: bool = False

    @property
    def rule(self) -> str:
        """What a valid value is, as in the error message: '> 0', 'in [0, 1)', "'adam' or 'rmsprop'"."""
        if self.choices is not None:
            quoted = [repr(c) for c in self.choices]
            return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return f"in {'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {lo:g}"
        if hi is not None:
            return f"{'<' if self.high_open else '<='} {hi:g}"
        return f"a {self.kind}"

    def problem(self, value: Any) -> str | None:
        """None when ``value`` satisfies this field's type, range and choices; else the rule it breaks."""
        if self.choices is not None:
            return None if value in self.choices else self.rule
        if self.kind in ("int", "float"):
            number = numbers.Integral if self.kind == "int" else numbers.Real
            if not isinstance(value, number) or isinstance(value, bool):
                article = "an integer" if self.kind == "int" else "a number"
                return article if self.low is None and self.high is None else f"{article} {self.rule}"
            if self.low is not None and (value <= self.low if self.low_open else value < self.low):
                return self.rule
            if self.high is not None and (value >= self.high if self.high_open else value > self.high):
                return self.rule
        return None


def _kind(annotation: Any) -> str:
    origin = typing.get_origin(annotation) or annotation
    for kind, cls in (("bool", bool), ("int", int), ("float", float), ("str", str), ("tuple", tuple)):
        if origin is cls:
            return kind
    raise TypeError(f"config fields must be one of {', '.join(KINDS)}, got {annotation!r}")


def field_specs(config_class: type) -> list[FieldSpec]:
    """The fields of a config dataclass (or instance), in declaration order, with their metadata."""
    return list(_specs(config_class if isinstance(config_class, type) else type(config_class)))


@functools.cache
def _specs(cls: type) -> tuple[FieldSpec, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        low, high = m.get("range", (None, None))
        low_open, high_open = m.get("open", (False, False))
        out.append(FieldSpec(f.name, _kind(hints[f.name]), f.default, low, high, m.get("log", False),
                             m.get("choices"), m.get("help", ""), low_open, high_open, m.get("typical"),
                             m.get("from_data", False)))
    return tuple(out)


def check(ok: bool, field: str, value: Any, rule: str) -> None:
    """A hand-written rule: raise ``field=value is invalid: must be <rule>`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{field}={value!r} is invalid: must be {rule}")


def check_fields(config: Any) -> None:
    """Every field of a config dataclass against its own metadata (type, range, choices), in
    declaration order: the first one that breaks its rule raises as ``check`` does."""
    for spec in field_specs(type(config)):
        value = getattr(config, spec.name)
        if spec.kind == "float" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = float(value)                 # beta1=0 means 0.0 (torch's Adam refuses betas (0, 0.9))
            object.__setattr__(config, spec.name, value)
        rule = spec.problem(value)
        check(rule is None, spec.name, value, rule or "")


@dataclasses.dataclass
class BaseConfig:
    """Fields every family shares. Subclasses add their own with ``setting``, and change a shared
    default with ``inherit`` (each with a comment on why the default has its value)."""

    later_fields: ClassVar[tuple[str, ...]] = ()   # see from_dict
    data_shape: tuple[int, ...] = setting((1, 28, 28), "(C, H, W) for images, (D,) for 2-D toy points",
                                          from_data=True)
    num_classes: int = setting(10, "labels available in the data (used when conditional)", ge=0,
                               from_data=True)
    conditional: bool = setting(False, "feed the class label to the networks")
    arch: str = setting("mlp", "networks: 'mlp', or 'conv' (DCGAN-style, image side divisible by 4)",
                        choices=("mlp", "conv"))
    hidden: tuple[int, ...] = setting((512, 256), "MLP hidden sizes, input side first")
    width: int = setting(64, "conv: channels of the first stage (doubled in the second)", ge=1,
                         typical=(8, 128))
    latent_dim: int = setting(64, "size of the latent code z", ge=1, typical=(1, 128))

    def __post_init__(self) -> None:
        self.data_shape = tuple(int(s) for s in self.data_shape)
        self.hidden = tuple(int(h) for h in self.hidden)
        self.validate()

    def validate(self) -> None:
        """Shape first (the other rules read it), then every field's range and choices from its
        metadata, then the rules that tie fields together. Each error names its field."""
        if not self.data_shape or any(s < 1 for s in self.data_shape):
            raise ValueError(f"data_shape must be positive sizes, got {self.data_shape}")
        if len(self.data_shape) not in (1, 3):
            raise ValueError(f"data_shape must be (C, H, W) or (D,), got {self.data_shape}")
        check_fields(self)
        check(not self.conditional or self.num_classes >= 2, "num_classes", self.num_classes,
              ">= 2 for a conditional model")
        check(self.arch == "mlp" or self.is_image and self.data_shape[1] % 4 == 0 == self.data_shape[2] % 4,
              "arch", self.arch, "'mlp' for this data (conv needs images with sides divisible by 4)")
        check(len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden), "hidden", self.hidden,
              "one or more positive sizes")

    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], require_all: bool = False) -> "BaseConfig":
        """Unknown fields are an error (a config from another family or version); with
        ``require_all`` (checkpoints) so are missing ones, rather than silently taking defaults,
        except ``later_fields``: added after checkpoints were first written, their defaults turn
        the addition off, so an older file loads as the model it was."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        missing = sorted(names - set(d) - set(cls.later_fields))
        if require_all and missing:
            raise ValueError(f"{cls.__name__} field(s) missing: {', '.join(missing)}")
        return cls(**d)
