"""Published serving models at one member: one JSON file per version, a pointer to the current one."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from protos.weft.v1 import serving_pb2
from services.serving.constants import CURRENT_FILE, MODEL_NAME_PATTERN

_NAME = re.compile(MODEL_NAME_PATTERN)
_VERSION_FILE = re.compile(r"^v([0-9]+)\.json$")
FEATURE_TABLE_FILE = "feature_table"


@dataclass(frozen=True)
class ChainStep:
    """One preprocessing component applied before the model, with this member's fitted model."""

    component: str
    module: str
    model_path: str


@dataclass(frozen=True)
class ModelPart:
    """This member's part of one version of a serving model."""

    name: str
    version: int
    job_id: str
    component: str
    module: str
    role: str
    member_id: str
    #: Every member holding a part, as (role, member id), promoter first.
    members: list[tuple[str, str]]
    chain: list[ChainStep]
    model_path: str
    #: At a provider: the data set ("namespace/name") it looks ids up in.
    feature_table: str = ""
    deadline_ms: int = 0
    published_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    #: What the model's component parameters say about scoring (e.g. the threshold).
    params: dict[str, Any] = field(default_factory=dict)
    #: At the promoter: the score answered when a provider is down or late (None: fail instead).
    fallback_score: float | None = None

    @property
    def providers(self) -> list[str]:
        return [member for role, member in self.members if role == "provider"]

    @property
    def promoter(self) -> str:
        return next(member for role, member in self.members if role == "promoter")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelPart:
        values = dict(raw)
        values["members"] = [(str(role), str(member)) for role, member in raw["members"]]
        values["chain"] = [ChainStep(**step) for step in raw["chain"]]
        return cls(**values)

    def to_proto(self, current: bool) -> serving_pb2.ServingModel:
        return serving_pb2.ServingModel(
            name=self.name, version=self.version, current=current, job_id=self.job_id, component=self.component,
            module=self.module, role=self.role, chain=[step.component for step in self.chain],
            members=[f"{role}:{member}" for role, member in self.members], feature_table=self.feature_table,
            published_ms=self.published_ms, deadline_ms=self.deadline_ms, fallback_score=self.fallback_score)


def check_model_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgument(f"model name {name!r}: use letters, digits, '_', '.' or '-' (at most 128, "
                              "starting with a letter or digit)")
    return name


_ABSENT: tuple[int, int] = (0, 0)


def _changed(path: Path) -> tuple[int, int]:
    """Which file is there (inode, change time in ns); (0, 0) when none is (files are replaced, never edited)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return _ABSENT
    return status.st_ino, status.st_mtime_ns


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


class ModelRegistry:
    """The serving models published at this member, under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        # (name, version) -> (the files' change times, the part): a request reads no JSON again
        self._parts: dict[tuple[str, int], tuple[tuple[tuple[int, int], ...], ModelPart]] = {}

    def _dir(self, name: str) -> Path:
        return self.root / check_model_name(name)

    def versions(self, name: str) -> list[int]:
        folder = self._dir(name)
        if not folder.is_dir():
            return []
        found = (_VERSION_FILE.match(p.name) for p in folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name) and self.versions(p.name))

    def current_version(self, name: str) -> int:
        path = self._dir(name) / CURRENT_FILE
        if not path.exists():
            return 0
        text = path.read_text(encoding="utf-8").strip()
        return int(text) if text.isdigit() else 0

    def next_version(self, name: str) -> int:
        return max(self.versions(name), default=0) + 1

    def put(self, part: ModelPart) -> None:
        """Record a version and make it current."""
        if part.version in self.versions(part.name):
            raise FailedPrecondition(f"model {part.name} version {part.version} is already published here")
        _write_atomic(self._dir(part.name) / f"v{part.version}.json", json.dumps(part.to_dict()))
        _write_atomic(self._dir(part.name) / CURRENT_FILE, str(part.version))

    def get(self, name: str, version: int = 0) -> ModelPart:
        """A version (0: the current one); NotFound when it is not published here."""
        chosen = version or self.current_version(name)
        path = self._dir(name) / f"v{chosen}.json"
        override = self._dir(name) / FEATURE_TABLE_FILE
        stamp = tuple(_changed(p) for p in (path, override))
        if not chosen or stamp[0] == _ABSENT:
            which = f"version {version} of model {name!r}" if version else f"model {name!r}"
            raise NotFound(f"{which} is not published at this member")
        cached = self._parts.get((name, chosen))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        part = ModelPart.from_dict(json.loads(path.read_text(encoding="utf-8")))
        if part.role == "provider" and stamp[1] != _ABSENT:
            part = ModelPart.from_dict({**part.to_dict(), "feature_table": override.read_text(encoding="utf-8").strip()})
        self._parts[(name, chosen)] = (stamp, part)
        return part

    def list(self, name: str = "") -> list[tuple[ModelPart, bool]]:
        names = [check_model_name(name)] if name else self.names()
        listed: list[tuple[ModelPart, bool]] = []
        for model in names:
            current = self.current_version(model)
            listed.extend((self.get(model, version), version == current) for version in self.versions(model))
        if name and not listed:
            raise NotFound(f"model {name!r} is not published at this member")
        return listed

    def rollback(self, name: str, version: int = 0) -> ModelPart:
        """Make `version` current (0: the latest version before the current one)."""
        versions = self.versions(name)
        if not versions:
            raise NotFound(f"model {name!r} is not published at this member")
        current = self.current_version(name)
        if version == 0:
            earlier = [v for v in versions if v < current]
            if not earlier:
                raise FailedPrecondition(f"model {name!r}: version {current} is the first; there is none to roll "
                                         "back to")
            version = earlier[-1]
        if version not in versions:
            raise NotFound(f"version {version} of model {name!r} is not published at this member "
                           f"(versions: {', '.join(map(str, versions))})")
        _write_atomic(self._dir(name) / CURRENT_FILE, str(version))
        return self.get(name, version)

    def remove(self, name: str, version: int = 0) -> int:
        """Remove one version (not the current) or, with 0, the whole model; how many versions went."""
        versions = self.versions(name)
        if not versions:
            raise NotFound(f"model {name!r} is not published at this member")
        if version == 0:
            shutil.rmtree(self._dir(name))
            return len(versions)
        if version not in versions:
            raise NotFound(f"version {version} of model {name!r} is not published at this member")
        if version == self.current_version(name):
            raise FailedPrecondition(f"version {version} is the current version of model {name!r}: roll back "
                                     "first, or unpublish the whole model")
        (self._dir(name) / f"v{version}.json").unlink()
        return 1

    def set_feature_table(self, name: str, table: str) -> None:
        if not self.versions(name):
            raise NotFound(f"model {name!r} is not published at this member")
        _write_atomic(self._dir(name) / FEATURE_TABLE_FILE, table)
