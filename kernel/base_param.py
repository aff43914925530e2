"""BaseParam: typed component parameters with defaults, bounds and clear errors."""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

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
