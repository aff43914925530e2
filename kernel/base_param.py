"""BaseParam: typed component parameters with defaults, bounds and clear errors."""

from __future__ import annotations

import copy
import types
import typing
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from kernel.errors import ParamError


class BaseParam(BaseModel):
    """A component's parameters; unknown keys are errors, every failure names the parameter.

    Subclasses declare fields with defaults and bounds (pydantic `Field`) and may override
    `_check` for rules that span several fields, raising `ParamError` with the field name.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    #: Name used in messages and as the conf key (``<Module>Param``); defaults to the class name.
    conf_key: ClassVar[str] = ""

    @classmethod
    def key(cls) -> str:
        return cls.conf_key or cls.__name__

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Build and check; pydantic's errors become one ParamError naming each bad field."""
        if not isinstance(values, dict):
            raise ParamError(f"{cls.key()}: expected an object of parameters, got {type(values).__name__}")
        try:
            param = cls.model_validate(values)
        except ValidationError as exc:
            raise ParamError(format_validation_error(cls.key(), exc)) from None
        param.check()
        return param

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        """Numbers and booleans must come as JSON numbers and booleans, not as look-alikes.

        Left to itself pydantic turns "30" or true into the integer 30 or 1, so a typo in a
        job spec would run silently with a value nobody wrote.
        """
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        kinds = _scalar_kinds(field.annotation)
        if not kinds or "other" in kinds:
            return value
        if isinstance(value, bool):
            if "bool" not in kinds:
                raise ValueError(f"expected {_kinds_text(kinds)}, got a boolean")
        elif isinstance(value, str):
            if "str" not in kinds:
                raise ValueError(f"expected {_kinds_text(kinds)}, got a string")
        elif isinstance(value, int | float) and "bool" in kinds and not kinds & {"int", "float"}:
            raise ValueError("expected a boolean (true or false), got a number")
        return value

    def check(self) -> None:
        """Validate again (after assignments) and run the cross-field rules."""
        try:
            type(self).model_validate(self.model_dump())
        except ValidationError as exc:
            raise ParamError(format_validation_error(self.key(), exc)) from None
        self._check()

    def _check(self) -> None:
        """Cross-field rules; override and raise ParamError naming the field."""

    def label_values(self) -> tuple[int, ...] | None:
        """The only label values this component accepts (checked against the data at submit); None: any."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


P = TypeVar("P", bound=BaseParam)

_SCALARS: dict[Any, str] = {int: "int", float: "float", bool: "bool", str: "str", type(None): "none"}


def _scalar_kinds(annotation: Any) -> set[str]:
    """The plain scalar types an annotation allows ("other" when it allows anything else too)."""
    if annotation in _SCALARS:
        return {_SCALARS[annotation]}
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _scalar_kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kinds: set[str] = set()
        for arg in typing.get_args(annotation):
            kinds |= _scalar_kinds(arg)
        return kinds
    return {"other"}


def _kinds_text(kinds: set[str]) -> str:
    names = {"int": "an integer", "float": "a number", "bool": "a boolean", "str": "a string"}
    wanted = [names[k] for k in ("int", "float", "bool", "str") if k in kinds]
    return " or ".join(wanted) + (" or null" if "none" in kinds else "")


def format_validation_error(owner: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(root)"
        if error["type"] == "extra_forbidden":
            problems.append(f"{owner}.{field}: unknown parameter")
        else:
            got = error.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            problems.append(f"{owner}.{field}: {error['msg']}{shown}")
    return "; ".join(problems)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge `override` into a copy of `base`: nested dicts merge, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def build_param(param_class: type[P], *layers: dict[str, Any] | None) -> P:
    """Class defaults <- default_runtime.json <- job params <- role params (later layers win)."""
    values: dict[str, Any] = {}
    for layer in layers:
        if layer:
            values = deep_merge(values, layer)
    return param_class.from_dict(values)
