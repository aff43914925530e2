"""ServingService and ServingPeerService: publishing, the promoter's prediction and the provider's part."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import (
    FailedPrecondition,
    FederationTimeout,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    WeftError,
)
from kernel.storage import DataStore
from protos.weft.v1 import serving_pb2, serving_pb2_grpc
from services.common.config import MemberConfig
from services.common.db import repository as repo
from services.common.grpc_errors import grpc_method, status_code_of
from services.serving.access import AuditEntry, AuditLog, ServingAccess
from services.serving.constants import (
    HORZ_LR,
    MANAGEMENT_TIMEOUT_S,
    SCORE_CARD,
    VERT_LR,
    VERT_SECUREBOOST,
)
from services.serving.features import FeatureTable
from services.serving.peers import ServingPeers
from services.serving.preprocessing import FloatArray
from services.serving.publishing import build_part, model_members
from services.serving.registry import ModelPart, ModelRegistry, check_model_name
from services.serving.scoring import LoadedPart

log = logging.getLogger("weft.serving")
T = TypeVar("T")


class ServingCore:
    """What both APIs share: the registry, loaded parts, feature tables, the relay, the audit log."""

    def __init__(self, config: MemberConfig, engine: AsyncEngine, key: bytes, registry: ModelRegistry,
                 audit: AuditLog) -> None:
        self.config = config
        self.member_id = config.member_id
        self.engine = engine
        self.registry = registry
        self.audit = audit
        self.storage_root = config.resolved_storage_root()
        self.store = DataStore(str(self.storage_root / "data"))
        self.peers = ServingPeers(config.transfer.internal_listen, key)
        self._loaded: dict[tuple[str, int], LoadedPart] = {}
        self._tables: dict[tuple[str, int, str], FeatureTable] = {}
        self._loading = asyncio.Lock()

    def deadline_s(self, part: ModelPart) -> float:
        return (part.deadline_ms or self.config.serving.provider_deadline_ms) / 1000

    async def loaded(self, part: ModelPart) -> LoadedPart:
        key = (part.name, part.version)
        found = self._loaded.get(key)
        if found is not None and found.part.published_ms == part.published_ms:
            return found
        async with self._loading:
            found = self._loaded.get(key)
            if found is None or found.part.published_ms != part.published_ms:
                found = await asyncio.to_thread(LoadedPart.load, part)
                self._loaded[key] = found
        return found

    def feature_table(self, loaded: LoadedPart) -> FeatureTable:
        part = loaded.part
        if not part.feature_table:
            raise FailedPrecondition(f"model {part.name} v{part.version} has no feature table at this member")
        key = (part.name, part.version, part.feature_table)
        table = self._tables.get(key)
        if table is None:
            table = FeatureTable(self.store, part.feature_table, loaded.raw_columns, self.config.serving.feature_refresh_s)
            self._tables[key] = table
        return table

    async def warm(self) -> None:
        """Load every model's current version (and a provider's feature table) before serving.

        A model that does not load is logged and left to fail at its first request."""
        for name in self.registry.names():
            try:
                loaded = await self.loaded(self.registry.get(name))
                if loaded.part.role == "provider" and loaded.part.feature_table:
                    await self.feature_table(loaded).rows([])
            except (WeftError, OSError) as exc:
                log.warning("model %s does not load: %s", name, exc)

    def forget(self, name: str) -> None:
        for key in [k for k in self._loaded if k[0] == name]:
            del self._loaded[key]
        for table_key in [k for k in self._tables if k[0] == name]:
            del self._tables[table_key]

    async def close(self) -> None:
        await self.peers.close()


def _raw_matrix(rows: list[serving_pb2.PredictRow], names: list[str]) -> FloatArray:
    """The promoter's raw features of the rows, in `names` order; a feature a row leaves out is missing (NaN)."""
    matrix = np.full((len(rows), len(names)), np.nan)
    for i, row in enumerate(rows):
        features = row.features
        matrix[i] = [features.get(name, np.nan) for name in names]
    return matrix


def _check_rows(rows: list[serving_pb2.PredictRow]) -> list[str]:
    if not rows:
        raise InvalidArgument("rows: at least one row is required")
    ids = [row.id for row in rows]
    if any(not value for value in ids):
        raise InvalidArgument("row.id is required")
    return ids


class ServingServicer(serving_pb2_grpc.ServingServiceServicer):
    """What this member's users call."""

    def __init__(self, core: ServingCore, access: ServingAccess) -> None:
        self.core = core
        self.access = access

    async def _audited(self, context: grpc.aio.ServicerContext, method: str, entry: AuditEntry,
                       work: Callable[[], Awaitable[T]]) -> T:
        """Admit the caller, run `work`, write the audit line whatever the outcome."""
        try:
            principal = await self.access.user(context, method)
            entry.caller = principal.user
            return await work()
        except WeftError as exc:
            entry.outcome = status_code_of(exc).name
            raise
        except BaseException:
            entry.outcome = "INTERNAL"
            raise
        finally:
            await self.core.audit.write(entry)

    # -- predictions ---------------------------------------------------------------------------
    async def _score(self, name: str, version: int, rows: list[serving_pb2.PredictRow],
                     entry: AuditEntry) -> list[serving_pb2.PredictResponse]:
        core = self.core
        part = core.registry.get(check_model_name(name), version)
        entry.version = part.version
        if part.role != "promoter" and part.module != HORZ_LR:
            raise FailedPrecondition(f"model {name} is scored at its promoter, member {part.promoter}; this member "
                                     "is a provider of it")
        ids = _check_rows(rows)
        loaded = await core.loaded(part)
        matrix = loaded.prepare(_raw_matrix(rows, loaded.raw_columns), ids)
        try:
            return await self._combine(part, loaded, matrix, ids)
        except (FederationTimeout, Unavailable) as exc:
            if part.fallback_score is None:
                raise
            entry.outcome = "FALLBACK"
            score = float(part.fallback_score)
            return [serving_pb2.PredictResponse(model_name=part.name, model_version=part.version, id=value,
                                                score=score, label=int(score >= loaded.threshold), fallback=True,
                                                fallback_reason=str(exc)) for value in ids]

    async def _combine(self, part: ModelPart, loaded: LoadedPart, matrix: FloatArray,
                       ids: list[str]) -> list[serving_pb2.PredictResponse]:
        name = part.name
        if part.module in (VERT_LR, HORZ_LR):
            own = loaded.linear(matrix)
            partials: list[FloatArray] = []
            if part.module == VERT_LR and part.providers:
                answers = await self._ask_providers(part, ids)
                partials = [self._partials(answers, member, len(ids)) for member in part.providers]
            score, label = loaded.combine_linear(own, partials)
        elif part.module == SCORE_CARD:
            points = loaded.card_points(matrix)
            answers = await self._ask_providers(part, ids) if part.providers else {}
            partials = [self._partials(answers, member, len(ids)) for member in part.providers]
            total, probability, label = loaded.combine_card(loaded.card_total(points), partials)
            return [serving_pb2.PredictResponse(
                model_name=part.name, model_version=part.version, id=value, score=float(probability[i]),
                label=int(label[i]), points=dict(zip(loaded.features, points[i].tolist(), strict=True)),
                card_score=float(total[i]), base_points=loaded.base_points,
                provider_points={m: float(p[i]) for m, p in zip(part.providers, partials, strict=True)})
                for i, value in enumerate(ids)]
        elif part.module == VERT_SECUREBOOST:
            answers = await self._ask_providers(part, ids) if part.providers else {}
            score, label = loaded.walk_trees(matrix, {m: list(a.decisions) for m, a in answers.items()})
        else:
            raise FailedPrecondition(f"model {name}: {part.module} cannot be served")
        return [serving_pb2.PredictResponse(model_name=part.name, model_version=part.version, id=value,
                                            score=float(score[i]), label=int(label[i]))
                for i, value in enumerate(ids)]

    @staticmethod
    def _partials(answers: dict[str, serving_pb2.PartialPredictResponse], member: str, rows: int) -> FloatArray:
        values = np.asarray(answers[member].partial_scores, dtype=np.float64)
        if len(values) != rows:
            raise InvalidArgument(f"provider {member} answered {len(values)} scores for {rows} ids")
        return values

    async def _ask_providers(self, part: ModelPart, ids: list[str]) -> dict[str, serving_pb2.PartialPredictResponse]:
        request = serving_pb2.PartialPredictRequest(model_name=part.name, model_version=part.version,
                                                    job_id=part.job_id, ids=ids)
        deadline = self.core.deadline_s(part)
        calls = [self.core.peers.call(member, "PartialPredict", request, serving_pb2.PartialPredictResponse, deadline)
                 for member in part.providers]
        answers = await asyncio.gather(*calls)
        return dict(zip(part.providers, answers, strict=True))

    @grpc_method
    async def Predict(self, request: serving_pb2.PredictRequest,
                      context: grpc.aio.ServicerContext) -> serving_pb2.PredictResponse:
        entry = AuditEntry("Predict", "", request.model_name, request.model_version, 1)

        async def work() -> serving_pb2.PredictResponse:
            return (await self._score(request.model_name, request.model_version, [request.row], entry))[0]

        return await self._audited(context, "Predict", entry, work)

    @grpc_method
    async def BatchPredict(self, request: serving_pb2.BatchPredictRequest,
                           context: grpc.aio.ServicerContext) -> AsyncIterator[serving_pb2.PredictResponse]:
        entry = AuditEntry("BatchPredict", "", request.model_name, request.model_version, len(request.rows))
        rows = list(request.rows)
        size = self.core.config.serving.batch_size
        results: list[serving_pb2.PredictResponse] = []

        async def work() -> None:
            _check_rows(rows)
            for start in range(0, len(rows), size):
                results.extend(await self._score(request.model_name, request.model_version,
                                                 rows[start:start + size], entry))

        await self._audited(context, "BatchPredict", entry, work)
        for result in results:
            yield result

    # -- model management -------------------------------------------------------------------------
    async def _others(self, members: list[tuple[str, str]]) -> list[str]:
        seen: list[str] = []
        for _, member in members:
            if member != self.core.member_id and member not in seen:
                seen.append(member)
        return seen

    @grpc_method
    async def PublishModel(self, request: serving_pb2.PublishModelRequest,
                           context: grpc.aio.ServicerContext) -> serving_pb2.ServingModel:
        name = request.name or request.component
        entry = AuditEntry("PublishModel", "", name, 0, 0, detail={"job_id": request.job_id,
                                                                   "component": request.component})

        async def work() -> serving_pb2.ServingModel:
            core = self.core
            check_model_name(name)
            if request.deadline_ms < 0:
                raise InvalidArgument(f"deadline_ms must not be negative (got {request.deadline_ms})")
            job = await repo.get_job(core.engine, request.job_id)
            if job is None:
                raise NotFound(f"job {request.job_id!r} is not known at this member")
            if "promoter" not in job.my_roles:
                raise FailedPrecondition(f"publish job {job.job_id} at its promoter; this member is its "
                                         f"{', '.join(job.my_roles)}")
            version = core.registry.next_version(name)
            part = build_part(job, request.component, name, version, int(request.deadline_ms), core.storage_root)
            assert part is not None
            if request.HasField("fallback_score"):
                binary = part.module != VERT_SECUREBOOST or part.params.get("objective", "binary") == "binary"
                if binary and not 0.0 <= request.fallback_score <= 1.0:
                    raise InvalidArgument(f"fallback_score {request.fallback_score} is not a probability")
                part = dataclasses.replace(part, fallback_score=float(request.fallback_score))
            await asyncio.to_thread(LoadedPart.load, part)  # a model that does not load is not published
            entry.version = version
            publish = serving_pb2.PublishPartRequest(name=name, version=version, job_id=job.job_id,
                                                     component=request.component, deadline_ms=request.deadline_ms)
            for member in await self._others(model_members(job.spec)):
                await core.peers.call(member, "PublishPart", publish, serving_pb2.ServingModel, MANAGEMENT_TIMEOUT_S,
                                      what="member")
            core.registry.put(part)
            log.info("published %s v%d from job %s component %s", name, version, job.job_id, request.component)
            return part.to_proto(current=True)

        return await self._audited(context, "PublishModel", entry, work)

    @grpc_method
    async def ListModels(self, request: serving_pb2.ListModelsRequest,
                         context: grpc.aio.ServicerContext) -> serving_pb2.ListModelsResponse:
        entry = AuditEntry("ListModels", "", request.name)

        async def work() -> serving_pb2.ListModelsResponse:
            listed = self.core.registry.list(request.name)
            return serving_pb2.ListModelsResponse(models=[part.to_proto(current) for part, current in listed])

        return await self._audited(context, "ListModels", entry, work)

    def _promoted(self, name: str) -> ModelPart:
        part = self.core.registry.get(check_model_name(name))
        if part.role != "promoter":
            raise FailedPrecondition(f"model {name} is managed at its promoter, member {part.promoter}")
        return part

    @grpc_method
    async def RollbackModel(self, request: serving_pb2.RollbackModelRequest,
                            context: grpc.aio.ServicerContext) -> serving_pb2.ServingModel:
        entry = AuditEntry("RollbackModel", "", request.name, request.version)

        async def work() -> serving_pb2.ServingModel:
            core = self.core
            current = self._promoted(request.name)
            versions = core.registry.versions(request.name)
            target = request.version or max((v for v in versions if v < current.version), default=0)
            if not target:
                raise FailedPrecondition(f"model {request.name!r}: version {current.version} is the first; there "
                                         "is none to roll back to")
            part = core.registry.get(request.name, target)
            entry.version = target
            ask = serving_pb2.RollbackModelRequest(name=request.name, version=target)
            for member in await self._others(part.members):
                await core.peers.call(member, "RollbackPart", ask, serving_pb2.ServingModel, MANAGEMENT_TIMEOUT_S,
                                      what="member")
            return core.registry.rollback(request.name, target).to_proto(current=True)

        return await self._audited(context, "RollbackModel", entry, work)

    @grpc_method
    async def UnpublishModel(self, request: serving_pb2.UnpublishModelRequest,
                             context: grpc.aio.ServicerContext) -> serving_pb2.UnpublishModelResponse:
        entry = AuditEntry("UnpublishModel", "", request.name, request.version)

        async def work() -> serving_pb2.UnpublishModelResponse:
            core = self.core
            part = self._promoted(request.name)
            members = sorted({m for v in core.registry.versions(request.name)
                              for m in await self._others(core.registry.get(request.name, v).members)})
            if request.version and request.version == part.version:
                raise FailedPrecondition(f"version {request.version} is the current version of model "
                                         f"{request.name!r}: roll back first, or unpublish the whole model")
            ask = serving_pb2.UnpublishModelRequest(name=request.name, version=request.version)
            for member in members:
                try:
                    await core.peers.call(member, "UnpublishPart", ask, serving_pb2.UnpublishModelResponse,
                                          MANAGEMENT_TIMEOUT_S, what="member")
                except NotFound:
                    pass  # that member holds no such version: nothing to remove there
            removed = core.registry.remove(request.name, request.version)
            core.forget(request.name)
            return serving_pb2.UnpublishModelResponse(removed=removed)

        return await self._audited(context, "UnpublishModel", entry, work)

    @grpc_method
    async def SetFeatureTable(self, request: serving_pb2.SetFeatureTableRequest,
                              context: grpc.aio.ServicerContext) -> serving_pb2.ServingModel:
        entry = AuditEntry("SetFeatureTable", "", request.name, detail={"feature_table": request.feature_table})

        async def work() -> serving_pb2.ServingModel:
            core = self.core
            part = core.registry.get(check_model_name(request.name))
            if part.role != "provider":
                raise FailedPrecondition(f"model {request.name}: only a provider looks ids up in a feature table; "
                                         f"this member is its {part.role}")
            namespace, _, data_name = request.feature_table.partition("/")
            if not namespace or not data_name:
                raise InvalidArgument(f"feature_table {request.feature_table!r}: expected namespace/name")
            await asyncio.to_thread(core.store.meta, namespace, data_name)  # NotFound when absent
            core.registry.set_feature_table(request.name, request.feature_table)
            core.forget(request.name)
            updated = core.registry.get(request.name)
            entry.version = updated.version
            return updated.to_proto(current=True)

        return await self._audited(context, "SetFeatureTable", entry, work)


class ServingPeerServicer(serving_pb2_grpc.ServingPeerServiceServicer):
    """What the model's promoter calls here, through the transfer services."""

    def __init__(self, core: ServingCore, access: ServingAccess) -> None:
        self.core = core
        self.access = access

    async def _audited(self, context: grpc.aio.ServicerContext, method: str, entry: AuditEntry,
                       work: Callable[[str], Awaitable[T]]) -> T:
        try:
            caller = self.access.peer(context, method)
            entry.caller = f"member {caller}"
            return await work(caller)
        except WeftError as exc:
            entry.outcome = status_code_of(exc).name
            raise
        finally:
            await self.core.audit.write(entry)

    def _part_for(self, caller: str, name: str, version: int) -> ModelPart:
        part = self.core.registry.get(check_model_name(name), version)
        if caller != part.promoter:
            raise PermissionDenied(f"member {caller} is not the promoter of model {name} v{part.version}")
        return part

    @grpc_method
    async def PartialPredict(self, request: serving_pb2.PartialPredictRequest,
                             context: grpc.aio.ServicerContext) -> serving_pb2.PartialPredictResponse:
        entry = AuditEntry("PartialPredict", "", request.model_name, request.model_version, len(request.ids))

        async def work(caller: str) -> serving_pb2.PartialPredictResponse:
            if request.model_version <= 0:
                raise InvalidArgument("model_version: the promoter names the exact version")
            part = self._part_for(caller, request.model_name, request.model_version)
            if part.job_id != request.job_id or part.role != "provider":
                raise PermissionDenied(f"model {part.name} v{part.version} here is not the provider's part of job "
                                       f"{request.job_id}")
            ids = list(request.ids)
            if not ids:
                raise InvalidArgument("ids: at least one id is required")
            loaded = await self.core.loaded(part)
            raw = await self.core.feature_table(loaded).rows(ids)
            matrix = loaded.prepare(raw, ids)
            if part.module == VERT_LR:
                return serving_pb2.PartialPredictResponse(partial_scores=loaded.linear(matrix).tolist())
            if part.module == VERT_SECUREBOOST:
                return serving_pb2.PartialPredictResponse(decisions=loaded.decisions(matrix))
            if part.module == SCORE_CARD:
                points = loaded.card_total(loaded.card_points(matrix))
                return serving_pb2.PartialPredictResponse(partial_scores=points.tolist())
            raise FailedPrecondition(f"model {part.name}: a {part.module} provider has no part in a prediction")

        return await self._audited(context, "PartialPredict", entry, work)

    @grpc_method
    async def PublishPart(self, request: serving_pb2.PublishPartRequest,
                          context: grpc.aio.ServicerContext) -> serving_pb2.ServingModel:
        entry = AuditEntry("PublishPart", "", request.name, request.version, detail={"job_id": request.job_id})

        async def work(caller: str) -> serving_pb2.ServingModel:
            core = self.core
            job = await repo.get_job(core.engine, request.job_id)
            if job is None:
                raise NotFound(f"job {request.job_id!r} is not known at member {core.member_id}")
            if caller not in (job.spec.get("role", {}).get("promoter", []) or []):
                raise PermissionDenied(f"member {caller} is not the promoter of job {job.job_id}")
            if request.version <= 0:
                raise InvalidArgument("version must be positive")
            part = build_part(job, request.component, check_model_name(request.name), int(request.version),
                              int(request.deadline_ms), core.storage_root, initiator=False)
            if part is None:
                return serving_pb2.ServingModel(name=request.name, version=request.version)
            await asyncio.to_thread(LoadedPart.load, part)
            if request.version in core.registry.versions(request.name):
                existing = core.registry.get(request.name, request.version)
                if (existing.job_id, existing.component) != (part.job_id, part.component):
                    raise FailedPrecondition(f"model {request.name} v{request.version} is already published here "
                                             f"from job {existing.job_id} {existing.component}")
                return existing.to_proto(current=True)  # a replay of the same publish
            core.registry.put(part)
            core.forget(request.name)
            return part.to_proto(current=True)

        return await self._audited(context, "PublishPart", entry, work)

    @grpc_method
    async def RollbackPart(self, request: serving_pb2.RollbackModelRequest,
                           context: grpc.aio.ServicerContext) -> serving_pb2.ServingModel:
        entry = AuditEntry("RollbackPart", "", request.name, request.version)

        async def work(caller: str) -> serving_pb2.ServingModel:
            self._part_for(caller, request.name, request.version)
            return self.core.registry.rollback(request.name, request.version).to_proto(current=True)

        return await self._audited(context, "RollbackPart", entry, work)

    @grpc_method
    async def UnpublishPart(self, request: serving_pb2.UnpublishModelRequest,
                            context: grpc.aio.ServicerContext) -> serving_pb2.UnpublishModelResponse:
        entry = AuditEntry("UnpublishPart", "", request.name, request.version)

        async def work(caller: str) -> serving_pb2.UnpublishModelResponse:
            self._part_for(caller, request.name, request.version)
            removed = self.core.registry.remove(request.name, request.version)
            self.core.forget(request.name)
            return serving_pb2.UnpublishModelResponse(removed=removed)

        return await self._audited(context, "UnpublishPart", entry, work)


def registry_root(config: MemberConfig) -> Path:
    from services.serving.constants import MODELS_DIR, SERVING_DIR

    return Path(config.data_dir) / SERVING_DIR / MODELS_DIR

