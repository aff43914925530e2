"""ModelBase: the class every component role derives from, and the rule table of `run`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pyarrow as pa

from kernel.base_param import BaseParam
from kernel.constants import (
    DEFAULT_GET_TIMEOUT_S,
    FLOW_FIT,
    FLOW_PREDICT,
    FLOW_TRANSFORM,
    FLOW_VALIDATE,
)
from kernel.errors import ConfError, InvalidArgument
from kernel.federation.base import Federation, Party, RoleTable
from kernel.federation.transfer_variable import FlowContext, TransferVariables, VariableDefinition
from kernel.federation.variables import VariableSet

if TYPE_CHECKING:
    from kernel.computing import ComputingSession, Table
    from kernel.storage import DataStore
    from kernel.storage.scratch import ScratchArea
    from kernel.tracker import Tracker

# Keys a task's input.data may use, and the rule each combination selects.
DATA_KEYS = ("data", "train_data", "validate_data", "test_data")
PREDICT_TYPE_COLUMN = "type"

V = TypeVar("V", bound=VariableSet)


def scratch_owner(task_id: str, local: Party) -> str:
    """Whose scratch area a task uses: its id, role and member (one area per task process)."""
    return f"{task_id}.{local.role}.{local.member_id}"


@dataclass(frozen=True)
class LabeledTable:
    """A Table plus what its columns mean: the id, the label (if any) and the features."""

    table: Table
    label_column: str | None = None
    feature_columns: tuple[str, ...] = ()

    @classmethod
    def infer(cls, table: Table, label_column: str | None) -> LabeledTable:
        label = label_column if label_column in table.schema.names else None
        features = tuple(n for n in table.schema.names if n not in (table.id_column, label))
        return cls(table, label, features)

    @property
    def id_column(self) -> str:
        return self.table.id_column

    def with_table(self, table: Table, feature_columns: tuple[str, ...] | None = None) -> LabeledTable:
        return replace(self, table=table, feature_columns=self.feature_columns if feature_columns is None else feature_columns)


@dataclass
class TaskContext:
    """Everything a component may touch, handed to it explicitly (no process-wide singletons)."""

    job_id: str
    task_id: str
    component_name: str
    module: str
    local: Party
    roles: RoleTable
    federation: Federation
    computing: ComputingSession
    storage: DataStore
    tracker: Tracker
    flow: FlowContext = field(default_factory=FlowContext)
    get_timeout: float = DEFAULT_GET_TIMEOUT_S
    #: The roles this component runs at in the job (from the conf); empty when the conf does not say.
    component_roles: tuple[str, ...] = ()

    def transfer_variables(self, definitions: dict[str, VariableDefinition]) -> TransferVariables:
        return TransferVariables(definitions, self.federation, self.flow, self.get_timeout)

    def scratch(self) -> ScratchArea:
        """This task's scratch area in the member's storage (removed when the task ends)."""
        return self.storage.scratch(scratch_owner(self.task_id, self.local))

    def variables(self, declared: type[V]) -> V:
        """A component's declared (typed) variables, bound to this task's federation and flow."""
        return declared(self.federation, self.flow, self.get_timeout)


@dataclass
class TaskArgs:
    """A task's resolved inputs: tables by input key, and upstream models by component."""

    data: dict[str, list[LabeledTable]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class TaskOutputs:
    """What `run` produced: the main data output (if any) and the model to export (if any).

    A component that writes several data sets (DataSplit's train, validate, test) puts the
    first in `data` and the others in `more_data`, in the order of the task's output names.
    """

    data: LabeledTable | None = None
    model: dict[str, Any] | None = None
    more_data: list[LabeledTable | None] = field(default_factory=list)


class ModelBase:
    """Base of every component role. Override fit / predict / transform / export_model / load_model.

    `run` picks what to call from the task's inputs (DESIGN.md section 6): `need_run`
    false passes data through; `data` alone fits; `data` and a model transforms (or
    predicts, for estimators); `train_data` [+ `validate_data`] fits then predicts both;
    `test_data` and a model predicts; `cv_param.need_cv` cross-validates.
    """

    #: Estimators answer `data` + model with `predict`, transformers with `transform`.
    is_estimator: ClassVar[bool] = False
    #: Roles that hold no rows (an arbiter) set this False: `run` then calls `coordinate`
    #: in the fit flow, and the task executor does not read the task's data inputs at all.
    needs_data: ClassVar[bool] = True

    def __init__(self, ctx: TaskContext, transfer_definitions: dict[str, VariableDefinition]) -> None:
        self.ctx = ctx
        self.tracker = ctx.tracker
        self.transfer_variable = ctx.transfer_variables(transfer_definitions)
        self.model_param: BaseParam | None = None
        #: Data outputs after the first, in the order of the task's output names.
        self.more_data: list[LabeledTable | None] = []

    # -- what components override -------------------------------------------------------
    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable | None:
        raise InvalidArgument(f"{type(self).__name__} cannot fit")

    def coordinate(self) -> LabeledTable | None:
        """The fit flow of a role that holds no rows (`needs_data` False), e.g. an arbiter."""
        raise InvalidArgument(f"{type(self).__name__} needs data")

    def predict(self, data: LabeledTable) -> LabeledTable | None:
        raise InvalidArgument(f"{type(self).__name__} cannot predict")

    def transform(self, data: LabeledTable) -> LabeledTable | None:
        raise InvalidArgument(f"{type(self).__name__} cannot transform")

    def export_model(self) -> dict[str, Any] | None:
        return None

    def load_model(self, model: dict[str, Any]) -> None:
        raise InvalidArgument(f"{type(self).__name__} takes no model input")

    def cross_validation(self, data: LabeledTable) -> LabeledTable | None:
        raise InvalidArgument(f"{type(self).__name__} does not support cross validation")

    # -- the rule table ---------------------------------------------------------------------
    def run(self, params: BaseParam, args: TaskArgs) -> TaskOutputs:
        outputs = self._run_rule(params, args)
        outputs.more_data = list(self.more_data)
        return outputs

    def _run_rule(self, params: BaseParam, args: TaskArgs) -> TaskOutputs:
        self.model_param = params
        if not self.needs_data:
            self._set_flow(FLOW_FIT)
            return TaskOutputs(data=self.coordinate(), model=self.export_model())
        kinds = {key for key, tables in args.data.items() if tables}
        has_model = bool(args.models)
        if args.data and not kinds:
            # Every upstream ran at this member without data for this role (a provider's
            # share of a prediction, say): there is nothing to do here.
            return TaskOutputs()
        select_rule(kinds, has_model, _need_cv(params), self.is_estimator)  # refuses bad combos

        if not getattr(params, "need_run", True):
            first = next((tables[0] for key in DATA_KEYS for tables in [args.data.get(key, [])] if tables), None)
            return TaskOutputs(data=first)
        if _need_cv(params):
            self._set_flow(FLOW_FIT)
            return TaskOutputs(data=self.cross_validation(_one(args, "train_data")), model=None)
        if "train_data" in kinds:
            train = _one(args, "train_data")
            validate = _one(args, "validate_data") if "validate_data" in kinds else None
            self._set_flow(FLOW_FIT)
            self.fit(train, validate)
            self._set_flow(FLOW_PREDICT)
            results = [_tag_rows(self.predict(train), "train")]
            if validate is not None:
                self._set_flow(FLOW_VALIDATE)
                results.append(_tag_rows(self.predict(validate), "validate"))
            return TaskOutputs(data=_union(results), model=self.export_model())
        if "test_data" in kinds:
            self._load_models(args)
            self._set_flow(FLOW_PREDICT)
            return TaskOutputs(data=self.predict(_one(args, "test_data")))
        if has_model:
            self._load_models(args)
            data = _one(args, "data")
            if self.is_estimator:
                self._set_flow(FLOW_PREDICT)
                return TaskOutputs(data=self.predict(data))
            self._set_flow(FLOW_TRANSFORM)
            return TaskOutputs(data=self.transform(data), model=self.export_model())
        self._set_flow(FLOW_FIT)
        result = self.fit(_one(args, "data"))
        return TaskOutputs(data=result, model=self.export_model())

    def _set_flow(self, flow_id: str) -> None:
        self.ctx.flow.flow_id = flow_id

    def _load_models(self, args: TaskArgs) -> None:
        for model in args.models.values():
            self.load_model(model)


def _need_cv(params: BaseParam) -> bool:
    cv = getattr(params, "cv_param", None)
    return bool(getattr(cv, "need_cv", False))


def select_rule(kinds: set[str], has_model: bool, need_cv: bool, is_estimator: bool) -> str:
    """Name the rule an input combination selects, or refuse it with a clear error.

    The scheduler calls this at SubmitJob too, so a bad combination never reaches a task.
    """
    unknown = kinds - set(DATA_KEYS)
    if unknown:
        raise ConfError(f"input.data: unknown key(s) {', '.join(sorted(unknown))} (expected {', '.join(DATA_KEYS)})")
    if need_cv:
        if kinds != {"train_data"} or has_model:
            raise ConfError("cv_param.need_cv needs exactly input.data.train_data and no model")
        return "cross_validation"
    if "train_data" in kinds:
        if kinds - {"train_data", "validate_data"} or has_model:
            raise ConfError("input.data.train_data goes only with validate_data, and takes no model")
        return "fit_predict"
    if "validate_data" in kinds:
        raise ConfError("input.data.validate_data needs train_data")
    if "test_data" in kinds:
        if kinds != {"test_data"} or not has_model:
            raise ConfError("input.data.test_data needs a model input and no other data")
        return "predict"
    if kinds == {"data"}:
        if has_model:
            return "predict" if is_estimator else "transform"
        return "fit"
    if not kinds:
        raise ConfError("input.data: a task needs data (data, train_data or test_data)")
    raise ConfError(f"input.data: unsupported combination {', '.join(sorted(kinds))}")


def _one(args: TaskArgs, key: str) -> LabeledTable:
    tables = args.data.get(key) or []
    if len(tables) != 1:
        raise ConfError(f"input.data.{key}: expected one data set, got {len(tables)}")
    return tables[0]


def _tag_rows(result: LabeledTable | None, kind: str) -> LabeledTable | None:
    if result is None:
        return None

    def add_type(block: pa.Table) -> pa.Table:
        column = pa.array(np.full(block.num_rows, kind, dtype=object), type=pa.string())
        return block.append_column(PREDICT_TYPE_COLUMN, column)

    return result.with_table(result.table.map_partitions(add_type))


def _union(results: list[LabeledTable | None]) -> LabeledTable | None:
    present = [r for r in results if r is not None]
    if not present:
        return None
    merged = present[0].table
    for other in present[1:]:
        merged = merged.union(other.table)
    return present[0].with_table(merged)
