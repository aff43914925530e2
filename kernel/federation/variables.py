"""Typed transfer variables: a component declares each message it exchanges as a class attribute.

    class VertLRVariables(VariableSet, component="VertLR", group="VertLRTransferVariable",
                          source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
        pubkey = Channel(PaillierPublicKey, src=PROMOTER, dst=(PROVIDER,))
        provider_forward = Channel(np.ndarray, src=PROVIDER, dst=(PROMOTER,))

A declaration names the payload type and the roles that send and receive it. When the class
is defined (at import of the component) every declaration is compared with the component's
`transfer_variable.json`, which stays the source of the sender and receiver rules: a variable
missing from either side, or roles that differ, raise ConfError before any job runs. Reading
an attribute of a bound set gives a `BoundChannel[T]`, so mypy knows what `get` returns and
what `remote` accepts; a misspelt name is an attribute error in mypy, not in a federated run.

Every received payload passes the declaration's check in one place: by default an
`isinstance` test against the payload type, or the declaration's own `check` function.

Iteration and batch scopes come from the set, not from hand-built suffix tuples:
`for epoch, scope in variables.iterations(n)` yields a set whose every tag carries `epoch`;
`scope.at(batch)` adds the batch. A scope's tags are the ones the untyped `suffix=(epoch,
batch)` gave, so a typed and an untyped member of one job agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from kernel.errors import ConfError, InvalidArgument
from kernel.federation.base import Federation
from kernel.federation.transfer_variable import (
    FlowContext,
    Variable,
    VariableDefinition,
    parse_definitions,
)

T = TypeVar("T")


class Channel(Generic[T]):
    """The declaration of one transfer variable: payload type, senders, receivers, check."""

    def __init__(
        self, payload: type[T], *, src: str | tuple[str, ...], dst: tuple[str, ...],
        check: Callable[[Any, str], T] | None = None,
    ) -> None:
        self.payload = payload
        self.src = (src,) if isinstance(src, str) else tuple(src)
        self.dst = tuple(dst)
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Channel[T]: ...

    @overload
    def __get__(self, instance: VariableSet, owner: type[Any]) -> BoundChannel[T]: ...

    def __get__(self, instance: VariableSet | None, owner: type[Any]) -> Channel[T] | BoundChannel[T]:
        if instance is None:
            return self
        return BoundChannel(self, instance)

    def validate(self, value: Any, what: str, component: str) -> T:
        """The received `value`, checked by the declaration (or against the payload type)."""
        if self.check is not None:
            return self.check(value, what)
        if not isinstance(value, self.payload):
            raise InvalidArgument(
                f"{component}: {what} must be a {self.payload.__name__}, got {type(value).__name__}"
            )
        return value


class BoundChannel(Generic[T]):
    """A declared variable of one task, in the scope of the set it was read from."""

    def __init__(self, channel: Channel[T], variables: VariableSet) -> None:
        self.channel = channel
        self.variables = variables
        self.variable = variables.variable(channel.name)

    def remote(self, obj: T, role: str | None = None, idx: int = -1) -> None:
        """Send `obj` to every receiving party (or those of `role`, or its idx-th party)."""
        self.variable.remote(obj, role=role, idx=idx, suffix=self.variables.scope)

    def get(self, idx: int = 0, role: str | None = None, timeout: float | None = None) -> T:
        """Receive from the idx-th sending party (of `role`, when several roles send), checked."""
        value = self.variable.get(idx=idx, suffix=self.variables.scope, role=role, timeout=timeout)
        return self._checked(value, idx, role)

    def get_all(self, role: str | None = None, timeout: float | None = None) -> list[T]:
        """Receive from every sending party (of `role`), in party order, each checked."""
        values = self.variable.get(suffix=self.variables.scope, role=role, timeout=timeout)
        return [self._checked(value, k, role) for k, value in enumerate(values)]

    def _checked(self, value: Any, index: int, role: str | None) -> T:
        sender = role or "/".join(self.channel.src)
        what = f"{sender} {index}'s {self.channel.name}"
        return self.channel.validate(value, what, self.variables.component)


class VariableSet:
    """The declared variables of one component, bound to a task's federation and scope.

    Subclasses pass `component` (the name in error messages), `group` (the group of the
    transfer_variable.json) and `source` (that file) as class keywords; the declarations
    are checked against the file when the subclass is created.
    """

    component: ClassVar[str] = ""
    group: ClassVar[str] = ""
    definitions: ClassVar[dict[str, VariableDefinition]] = {}

    def __init_subclass__(cls, *, component: str, group: str, source: Path, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.component, cls.group = component, group
        # A file on disk, or else read through the declaring package: the kernel also runs from
        # the zip a Spark master receives (--py-files), where no path of it is a file.
        if source.is_file():
            text = source.read_text(encoding="utf-8")
        else:
            package = cls.__module__.rpartition(".")[0]
            text = resources.files(package).joinpath(source.name).read_text(encoding="utf-8")
        cls.definitions = check_declarations(cls, group, parse_definitions(json.loads(text), str(source)),
                                             str(source))

    def __init__(
        self, federation: Federation, flow: FlowContext, timeout: float, scope: tuple[Any, ...] = (),
    ) -> None:
        self.federation = federation
        self.flow = flow
        self.timeout = timeout
        self.scope = scope
        self._variables: dict[str, Variable] = {}

    def variable(self, name: str) -> Variable:
        """The untyped variable behind a declaration (built once per set)."""
        if name not in self._variables:
            self._variables[name] = Variable(self.definitions[name], self.federation, self.flow, self.timeout)
        return self._variables[name]

    def at(self, *keys: Any) -> Self:
        """The same variables in a narrower scope: every tag also carries `keys`."""
        return type(self)(self.federation, self.flow, self.timeout, (*self.scope, *keys))

    def iterations(self, count: int, start: int = 0) -> Iterator[tuple[int, Self]]:
        """(i, scope of iteration i) for i in [start, count): the loop of an iterative algorithm."""
        for index in range(start, count):
            yield index, self.at(index)


def declarations(cls: type[Any]) -> dict[str, Channel[Any]]:
    """Every Channel declared on `cls` and its bases, by name."""
    found: dict[str, Channel[Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Channel):
                found[name] = value
    return found


def check_declarations(
    cls: type[Any], group: str, definitions: dict[str, VariableDefinition], source: str,
) -> dict[str, VariableDefinition]:
    """The file's definitions of `group`, after checking that `cls` declares exactly them."""
    ours = {name: d for name, d in definitions.items() if d.group == group}
    if not ours:
        raise ConfError(f"{cls.__name__}: {source} has no variable group {group!r}")
    declared = declarations(cls)
    problems = [f"{name} is declared but not in {source}" for name in sorted(set(declared) - set(ours))]
    problems += [f"{name} is in {source} but not declared" for name in sorted(set(ours) - set(declared))]
    for name in sorted(set(declared) & set(ours)):
        channel, definition = declared[name], ours[name]
        if set(channel.src) != set(definition.src) or set(channel.dst) != set(definition.dst):
            problems.append(
                f"{name} is declared {'|'.join(channel.src)} -> {'|'.join(channel.dst)}, the file says "
                f"{'|'.join(definition.src)} -> {'|'.join(definition.dst)}"
            )
    if problems:
        raise ConfError(f"{cls.__name__}: " + "; ".join(problems))
    return ours
