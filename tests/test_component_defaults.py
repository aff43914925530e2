"""Every default a component's default_runtime.json states is the default of its parameter class.

default_runtime.json is the contract users read; the parameter class is what a bare
`Param()` holds. A job layers the first over the second, so when they differ the docs, the
class and a job disagree about what a parameter is when nobody sets it.
"""

from __future__ import annotations

from typing import Any

import pytest

from kernel.registry import registry


def _same(stated: Any, declared: Any) -> bool:
    """Equal values of the same JSON kind (true is not 1, 1 is 1.0)."""
    if isinstance(stated, bool) or isinstance(declared, bool):
        return type(stated) is type(declared) and stated == declared
    if isinstance(stated, dict) and isinstance(declared, dict):
        return stated.keys() <= declared.keys() and all(_same(v, declared[k]) for k, v in stated.items())
    if isinstance(stated, list) and isinstance(declared, list):
        return len(stated) == len(declared) and all(_same(a, b) for a, b in zip(stated, declared, strict=True))
    return bool(stated == declared)


@pytest.mark.parametrize("module", sorted(registry()))
def test_default_runtime_matches_the_parameter_class(module: str) -> None:
    # Prepare
    spec = registry()[module]
    declared = spec.param_class().model_construct().model_dump(mode="json")

    # Execute
    unknown = sorted(set(spec.default_runtime) - set(declared))
    differing = {
        key: (value, declared[key])
        for key, value in spec.default_runtime.items()
        if key in declared and not _same(value, declared[key])
    }

    # Assert
    assert unknown == [], f"{module}: default_runtime.json names parameters the class lacks"
    assert differing == {}, f"{module}: default_runtime.json value, class default"


def test_a_differing_default_is_seen() -> None:
    assert not _same(True, False)
    assert not _same(1, True)
    assert not _same({"depth": 3}, {"depth": 4, "rate": 0.1})
    assert _same({"depth": 3}, {"depth": 3, "rate": 0.1})
    assert _same(0.0001, 1e-4)
    assert _same(30, 30.0)
