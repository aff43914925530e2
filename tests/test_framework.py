"""BaseParam merging, component discovery and the run-rule table."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from kernel.base_param import BaseParam, build_param, deep_merge
from kernel.errors import ComponentNotFound, ConfError, ParamError, RoleNotSupported
from kernel.model_base import ModelBase, select_rule
from kernel.registry import get_component, registry
from kernel.runtime_conf import parse_runtime_conf


class InnerParam(BaseParam):
    depth: int = Field(3, ge=1)


class OuterParam(BaseParam):
    rate: float = Field(0.1, gt=0)
    name: str = "a"
    inner: InnerParam = Field(default_factory=InnerParam)


def test_merge_order_defaults_runtime_common_role() -> None:
    param = build_param(OuterParam, {"rate": 0.2, "inner": {"depth": 4}}, {"name": "job"}, {"inner": {"depth": 9}})
    assert (param.rate, param.name, param.inner.depth) == (0.2, "job", 9)


def test_nested_and_unknown_parameters_are_named() -> None:
    with pytest.raises(ParamError, match=r"OuterParam.inner.depth: Input should be greater than or equal to 1"):
        OuterParam.from_dict({"inner": {"depth": 0}})
    with pytest.raises(ParamError, match=r"OuterParam.inner.colour: unknown parameter"):
        OuterParam.from_dict({"inner": {"colour": 1}})


def test_check_catches_bad_assignment() -> None:
    param = OuterParam()
    with pytest.raises(ValidationError, match="rate"):
        param.rate = -1


def test_deep_merge_does_not_mutate_inputs() -> None:
    base = {"a": {"b": 1}}
    merged = deep_merge(base, {"a": {"c": 2}})
    assert merged == {"a": {"b": 1, "c": 2}} and base == {"a": {"b": 1}}


def test_registry_discovers_component_folders() -> None:
    components = registry()
    assert {"DataIO", "Distribution", "Evaluation"} <= set(components)
    distribution = get_component("Distribution")
    assert distribution.roles == ("promoter", "provider", "arbiter")
    assert issubclass(distribution.program_class("arbiter"), ModelBase)
    assert distribution.param_class().__name__ == "DistributionParam"
    assert "feature_range" in distribution.transfer_variables


def test_unknown_module_and_role_are_refused() -> None:
    with pytest.raises(ComponentNotFound, match="unknown module 'Nope'"):
        get_component("Nope")
    with pytest.raises(RoleNotSupported, match="does not support role 'arbiter'"):
        get_component("DataIO").program_class("arbiter")


@pytest.mark.parametrize(
    ("kinds", "model", "cv", "estimator", "rule"),
    [
        ({"data"}, False, False, False, "fit"),
        ({"data"}, True, False, False, "transform"),
        ({"data"}, True, False, True, "predict"),
        ({"train_data"}, False, False, True, "fit_predict"),
        ({"train_data", "validate_data"}, False, False, True, "fit_predict"),
        ({"test_data"}, True, False, True, "predict"),
        ({"train_data"}, False, True, True, "cross_validation"),
    ],
)
def test_rule_table(kinds: set[str], model: bool, cv: bool, estimator: bool, rule: str) -> None:
    assert select_rule(kinds, model, cv, estimator) == rule


@pytest.mark.parametrize(
    ("kinds", "model", "cv", "message"),
    [
        ({"validate_data"}, False, False, "validate_data needs train_data"),
        ({"test_data"}, False, False, "test_data needs a model"),
        ({"train_data"}, True, False, "takes no model"),
        ({"data", "test_data"}, True, False, "test_data needs a model input and no other data"),
        ({"data"}, False, True, "need_cv"),
        (set(), False, False, "a task needs data"),
        ({"weird"}, False, False, "unknown key"),
    ],
)
def test_rule_table_refuses_bad_combinations(kinds: set[str], model: bool, cv: bool, message: str) -> None:
    with pytest.raises(ConfError, match=message):
        select_rule(kinds, model, cv, True)


def test_runtime_conf_numeric_codes_and_refusals() -> None:
    conf = {
        "initiator": {"member_id": "m", "role": "promoter"}, "job_parameters": {"backend": 1, "work_mode": 0},
        "role": {"promoter": ["m"]}, "local": {"member_id": "m", "role": "promoter"},
        "module": "DataIO", "input": {"data": {"data": ["args.x"]}},
    }
    parsed = parse_runtime_conf(conf)
    assert (parsed.backend, parsed.work_mode, parsed.db_type) == ("SPARK", "STANDALONE", "PARQUET")
    with pytest.raises(ConfError, match="local: member x is not a promoter"):
        parse_runtime_conf({**conf, "local": {"member_id": "x", "role": "promoter"}})
    with pytest.raises(ConfError, match="role.guest: unknown role"):
        parse_runtime_conf({**conf, "role": {"guest": ["m"]}})
    with pytest.raises(ConfError, match="db_type"):
        parse_runtime_conf({**conf, "job_parameters": {"db_type": "CLICK_HOUSE"}})
