"""Component discovery: every `kernel/components/*/setting.json` declares one component.

The folders are read through `importlib.resources`, never by listing a directory on disk,
so the kernel finds its components the same from a source tree, an installed wheel or the
`--py-files` zip that a non-local Spark master ships to its executors.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from kernel.base_param import BaseParam
from kernel.constants import (
    COMPONENTS_PACKAGE,
    DEFAULT_RUNTIME_FILE,
    ROLES,
    SETTING_FILE,
    TRANSFER_VARIABLE_FILE,
)
from kernel.errors import ComponentNotFound, ConfError, RoleNotSupported
from kernel.federation.transfer_variable import VariableDefinition, parse_definitions

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from kernel.model_base import ModelBase


def components_root() -> Traversable:
    """The `kernel.components` package as a traversable tree (a directory or a place in a zip)."""
    return resources.files(COMPONENTS_PACKAGE)


@dataclass(frozen=True)
class ComponentSpec:
    """What one component folder declares."""

    module: str
    #: The component's folder name under kernel/components (also its Python subpackage).
    folder: str
    param_ref: str
    role_programs: dict[str, str]
    default_runtime: dict[str, Any] = field(default_factory=dict)
    transfer_variables: dict[str, VariableDefinition] = field(default_factory=dict)
    #: Data outputs a task may write (setting.json "data_outputs"; DataSplit writes three).
    data_outputs: int = 1

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(role for role in ROLES if role in self.role_programs)

    def param_class(self) -> type[BaseParam]:
        cls = _load_class(self.folder, self.param_ref, f"{self.module}.param_class")
        if not (isinstance(cls, type) and issubclass(cls, BaseParam)):
            raise ConfError(f"{self.module}: param_class {self.param_ref} is not a BaseParam")
        return cls

    def program_class(self, role: str) -> type[ModelBase]:
        from kernel.model_base import ModelBase

        if role not in self.role_programs:
            raise RoleNotSupported(
                f"component {self.module} does not support role {role!r} "
                f"(supported: {', '.join(self.roles) or 'none'})"
            )
        cls = _load_class(self.folder, self.role_programs[role], f"{self.module}.role.{role}")
        if not (isinstance(cls, type) and issubclass(cls, ModelBase)):
            raise ConfError(f"{self.module}: program for {role} is not a ModelBase")
        return cls


def _load_class(folder: str, ref: str, where: str) -> Any:
    """Resolve ``file.py/ClassName`` inside a component folder (files of that folder only)."""
    try:
        file_name, class_name = ref.split("/")
    except ValueError:
        raise ConfError(f"{where}: expected 'file.py/ClassName', got {ref!r}") from None
    if (not file_name.endswith(".py") or "/" in file_name or file_name.startswith(".")
            or not (components_root() / folder / file_name).is_file()):
        raise ConfError(f"{where}: no file {file_name} in {folder}")
    module = importlib.import_module(f"{COMPONENTS_PACKAGE}.{folder}.{file_name[:-3]}")
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ConfError(f"{where}: {file_name} has no class {class_name}") from None


def _read_json(folder: Traversable, name: str) -> Any:
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfError(f"{folder.name}/{name}: invalid JSON ({exc})") from None


def _parse_setting(folder: Traversable) -> ComponentSpec:
    setting = _read_json(folder, SETTING_FILE)
    where = f"{folder.name}/{SETTING_FILE}"
    for key in ("module", "param_class", "role"):
        if key not in setting:
            raise ConfError(f"{where}: missing key {key!r}")
    programs: dict[str, str] = {}
    for role_key, entry in setting["role"].items():
        if not isinstance(entry, dict) or "program" not in entry:
            raise ConfError(f"{where}: role {role_key!r} needs a 'program'")
        for role in role_key.split("|"):
            if role not in ROLES:
                raise ConfError(f"{where}: unknown role {role!r}")
            programs[role] = entry["program"]
    defaults = _read_json(folder, DEFAULT_RUNTIME_FILE) if (folder / DEFAULT_RUNTIME_FILE).is_file() else {}
    variables = (parse_definitions(_read_json(folder, TRANSFER_VARIABLE_FILE),
                                   f"{folder.name}/{TRANSFER_VARIABLE_FILE}")
                 if (folder / TRANSFER_VARIABLE_FILE).is_file() else {})
    data_outputs = setting.get("data_outputs", 1)
    if not isinstance(data_outputs, int) or isinstance(data_outputs, bool) or data_outputs < 1:
        raise ConfError(f"{where}: data_outputs must be a positive integer")
    return ComponentSpec(setting["module"], folder.name, setting["param_class"], programs, defaults, variables,
                         data_outputs)


@cache
def registry() -> dict[str, ComponentSpec]:
    """All components by module name, read from the component folders once."""
    found: dict[str, ComponentSpec] = {}
    folders = [entry for entry in components_root().iterdir()
               if entry.is_dir() and (entry / SETTING_FILE).is_file()]
    for folder in sorted(folders, key=lambda entry: entry.name):
        spec = _parse_setting(folder)
        if spec.module in found:
            raise ConfError(f"module {spec.module} declared twice ({found[spec.module].folder}, {folder.name})")
        found[spec.module] = spec
    return found


def get_component(module: str) -> ComponentSpec:
    components = registry()
    if module not in components:
        raise ComponentNotFound(
            f"unknown module {module!r} (known: {', '.join(sorted(components)) or 'none'})"
        )
    return components[module]
