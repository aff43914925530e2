"""Transfer benchmark: a message from a task of one member to a task of another, beside a raw grpc.aio stream.

Run from the repository root:

    python benchmarks/transfer.py               # 1 GiB
    python benchmarks/transfer.py --size-mb 64  # a quick check

Two members' transfer services run as separate processes on loopback with mutual TLS. A
sending task (this process) sends the message to member B; a receiving task, in its own
process as a task of another member would be, reads it from B's service (Receive).
Both tasks handle frames as the CLUSTER federation client does (kernel/federation/wire/frames.py)
and set the allocator as task processes do: the sending task computes the message's XXH3
checksum as it streams the chunks and sends it in the end frame, the receiving task
verifies it as the chunks arrive, so both checksums are inside the timed part. The Weft
figure is the message size divided by the time from the first byte sent to the last byte
received and checked. The baseline streams the same chunks with a
plain grpc.aio client-streaming call to a bare server process on loopback (no TLS, no
mailbox, no second hop). For context the same bare stream is also timed with mutual TLS
(`raw_grpc_tls_mb_s`, `ratio_vs_tls`).

The Weft figures (`weft_mb_s`, `ratio`, ...) are the path the product takes with its
default configuration for a message this large (at least `transfer.direct_min_bytes`):
the sending task asks its own member's service for a delivery ticket (IssueTicket), opens
a TLS channel to member B's external listener with member A's task certificate and calls
Deliver itself with the ticket (kernel/federation/direct.py), so member A's service is not
on the data path; B's service checks the ticket and the frames and hands the chunks to the
receiving task. The `direct_*` keys give the same runs under the names of the earlier
direct-path measurement. The path through both services (task -> service A -> service B
-> task, the path of smaller messages and of members without a task certificate) is
measured in the same rounds under the `service_*` keys: the sending task streams the
message into member A's service (Send, over its data lane), which forwards it to member
B's service (Deliver) and acknowledges once B stored it.

The runs are interleaved (a Weft transfer, a transfer through both services, then each
baseline, `--repeat` times) so each Weft run has baseline runs made under the same machine
load beside it. `ratio` is the median of the per-round ratios Weft / plain baseline
(`ratio_min`, `ratio_max` beside it); the MB/s figures are medians of the runs. Every
round prints when done, with the load average and the CPU seconds per GiB of each
process on the path (sending task, both services, receiving task; the bare client and
server), and `cpu_ratio` is the median of the rounds' ratios of Weft's CPU seconds to the
bare stream's. `service_ratio` (with `_min`/`_max`), `service_cpu_s_per_gib` and
`service_cpu_ratio` are the same figures for the path through both services, and the
`*_cpu_s_per_gib_by_process` keys give each process's median. Peak resident memory is
reported for the services and for both tasks. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import MIN_ROUNDS, load_average, load_text, process_cpu_seconds, report  # noqa: E402

from kernel.allocator import reuse_large_buffers  # noqa: E402
from kernel.errors import ChecksumMismatch  # noqa: E402
from kernel.federation.base import Party  # noqa: E402
from kernel.federation.cluster import CHANNEL_OPTIONS, RECEIVE_METHOD, SEND_METHOD  # noqa: E402
from kernel.federation.direct import DirectPath  # noqa: E402
from kernel.federation.lane import lane_of  # noqa: E402
from kernel.federation.wire.frames import (  # noqa: E402
    OutFrame,
    chunk_parts,
    encode_end,
    encode_header,
    frame_bytes,
    new_checksum,
    parse_frame,
)
from kernel.federation.wire.lane import CREDENTIAL_METADATA, TASK_CREDENTIAL_ENV  # noqa: E402
from protos.weft.v1 import common_pb2, transfer_pb2  # noqa: E402
from services.transfer.loopback_services import LocalCluster, LocalMember, free_port, rss_mb  # noqa: E402

SENDER, RECEIVER = "a" * 32, "b" * 32
PROMOTER, ARBITER = Party("promoter", SENDER), Party("arbiter", RECEIVER)
VARIABLE = "DistributionTransferVariable.local_statistics"  # promoter -> arbiter
CHUNK = 1024 * 1024
RAW_METHOD = "/bench.Raw/Upload"
GRPC_OPTIONS = [("grpc.max_send_message_length", 2 * CHUNK), ("grpc.max_receive_message_length", 2 * CHUNK)]


def payload_block() -> bytes:
    """One MiB of incompressible bytes; the message repeats it."""
    return os.urandom(CHUNK)


def weft_frames(block: bytes, size: int, session_id: str, message_id: str = "") -> Iterator[OutFrame]:
    """The frames a task's federation client writes for a streamed message (kernel/federation/cluster.py):
    the checksum is computed as the chunks go out and travels in the end frame."""
    chunks = size // CHUNK
    yield encode_header(transfer_pb2.FrameHeader(
        message_id=message_id or uuid.uuid4().hex, session_id=session_id, name=VARIABLE, tag="bench",
        src=common_pb2.Party(role=PROMOTER.role, member_id=PROMOTER.member_id),
        dst=common_pb2.Party(role=ARBITER.role, member_id=ARBITER.member_id),
        total_size=chunks * CHUNK, kind=transfer_pb2.PAYLOAD_KIND_OBJECT,
        created_at_ms=int(time.time() * 1000),
    ))
    checksum = new_checksum()
    for seq in range(chunks):
        checksum.update(block)
        yield chunk_parts(seq, block)
    yield encode_end(chunks, chunks * CHUNK, checksum.digest())


def receive_request(session_id: str) -> transfer_pb2.ReceiveRequest:
    return transfer_pb2.ReceiveRequest(
        session_id=session_id, name=VARIABLE, tag="bench", timeout_ms=600_000,
        src=common_pb2.Party(role=PROMOTER.role, member_id=SENDER),
        dst=common_pb2.Party(role=ARBITER.role, member_id=RECEIVER),
    )


def receiving_task(target: str, session_id: str) -> None:
    """The receiving task (its own process, as a task of another member is): reads the message.

    Verifies the checksum as the CLUSTER client does. Prints "waiting" once the Receive call
    is made, then one JSON line with the payload bytes read, the monotonic time of the last
    one (the clock is shared by the processes), its CPU seconds since the call and its peak RSS.
    """
    reuse_large_buffers()
    credential = os.environ.get(TASK_CREDENTIAL_ENV, "")  # as the executor hands it to a task
    with grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel:
        lane = lane_of(channel, target, credential=credential)
        if lane is not None:
            frames = lane.receive(receive_request(session_id))
        else:
            receive = channel.unary_stream(
                RECEIVE_METHOD, request_serializer=transfer_pb2.ReceiveRequest.SerializeToString)
            frames = receive(receive_request(session_id), timeout=900,
                             metadata=((CREDENTIAL_METADATA, credential),))
        print("waiting", flush=True)
        started = resource.getrusage(resource.RUSAGE_SELF)
        size = 0
        verified = False
        checksum = new_checksum()
        for raw in frames:
            frame = parse_frame(raw)
            if frame.kind == "chunk":
                checksum.update(frame.data)
                size += len(frame.data)
            elif frame.kind == "end" and frame.end is not None:
                if frame.end.checksum != checksum.digest():
                    raise ChecksumMismatch("the benchmark message arrived with a wrong checksum")
                verified = True
        done = time.monotonic()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = usage.ru_utime + usage.ru_stime - started.ru_utime - started.ru_stime
        print(json.dumps({"bytes": size, "verified": verified, "done": done, "cpu_s": cpu_s,
                          "peak_rss_mb": usage.ru_maxrss / 1024}), flush=True)


def wait_for_receiver(member: LocalMember, deadline_s: float = 30.0) -> None:
    """Until the receiving service counts the task's Receive call as waiting."""
    stop = time.monotonic() + deadline_s
    while member.stats().receivers_waiting < 1:
        if time.monotonic() > stop:
            raise SystemExit("the receiving task's Receive call never reached its transfer service")
        time.sleep(0.01)


def member_tls_files(workdir: Path, member_id: str) -> tuple[Path, Path, Path]:
    """CA, certificate and key of a member, as `LocalCluster` issued them."""
    return workdir / "ca" / "ca.crt", workdir / member_id / f"{member_id}.crt", workdir / member_id / f"{member_id}.key"


@dataclass(frozen=True)
class Moved:
    """One message moved: the seconds from the first byte sent to the last byte received and
    checked, the CPU seconds each process spent meanwhile, and what the receiving task read."""

    elapsed_s: float
    cpu_s: dict[str, float]
    bytes_verified: int
    receiving_task_peak_rss_mb: float


def move_once(members: LocalCluster, session_id: str, block: bytes, size: int, path: str = "product") -> Moved:
    """One message A -> B over `path` ("product" or "service").

    The sending task is this process; the receiving task is another process, waiting in
    Receive before the first byte is sent (the usual case in a training loop). On the
    "product" path the sending task does what the CLUSTER federation client does with a
    message of at least `transfer.direct_min_bytes`: a delivery ticket from member A's
    service, then Deliver on member B's external listener with A's task certificate
    (kernel/federation/direct.py). On the "service" path it streams to member A's service
    (Send, over the data lane), which delivers to member B's. Both end at B's service,
    which checks the frames, verifies the checksum and hands the chunks to the receiving
    task over its data lane.
    """
    members.register_session(session_id, [PROMOTER, ARBITER])
    command = [sys.executable, __file__, "--receive-task", members[RECEIVER].internal, "--session", session_id]
    receiver = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={
        **os.environ, TASK_CREDENTIAL_ENV: members[RECEIVER].task_credential(session_id)})
    credential = members[SENDER].task_credential(session_id)
    assert receiver.stdout is not None
    try:
        receiver.stdout.readline()  # "waiting"
        wait_for_receiver(members[RECEIVER])
        cpu0 = {"sending_task": process_cpu_seconds(os.getpid(), False),
                "sending_service": process_cpu_seconds(members[SENDER].pid),
                "receiving_service": process_cpu_seconds(members[RECEIVER].pid)}
        message_id = uuid.uuid4().hex
        with grpc.insecure_channel(members[SENDER].internal, options=list(CHANNEL_OPTIONS)) as channel:
            if path == "product":
                direct = DirectPath(channel, ((CREDENTIAL_METADATA, credential),))
                try:
                    if not direct.wants(size, RECEIVER):
                        raise SystemExit(f"a {size}-byte message would not go direct (transfer.direct_min_bytes "
                                         "is larger, or the direct path is off)")
                    # The ticket and the TLS handshake come before the clock starts: a task
                    # asks once per session and peer, and keeps the channel.
                    if not direct.prepare(session_id, RECEIVER):
                        raise SystemExit("member A issued no delivery ticket")
                    start = time.monotonic()
                    delivered = direct.send(lambda: weft_frames(block, size, session_id, message_id),
                                            session_id, RECEIVER)
                finally:
                    direct.close()
                if delivered is None:
                    raise SystemExit("the direct path fell back to the service path")
                stored_size = delivered.stored_size
            else:
                frames = weft_frames(block, size, session_id, message_id)
                lane = lane_of(channel, members[SENDER].internal, credential=credential)
                start = time.monotonic()
                if lane is not None:
                    ack = lane.send(frames)
                else:
                    send = channel.stream_unary(SEND_METHOD, response_deserializer=transfer_pb2.SendAck.FromString)
                    ack = send((frame_bytes(frame) for frame in frames), timeout=900,
                               metadata=((CREDENTIAL_METADATA, credential),))
                stored_size = ack.stored_size
        result = json.loads(receiver.stdout.readline() or "{}")
        cpu = {"sending_task": process_cpu_seconds(os.getpid(), False) - cpu0["sending_task"],
               "sending_service": process_cpu_seconds(members[SENDER].pid) - cpu0["sending_service"],
               "receiving_service": process_cpu_seconds(members[RECEIVER].pid) - cpu0["receiving_service"]}
    finally:
        receiver.wait(timeout=900)
    received = result.get("bytes", 0)
    if stored_size != size or received != size or not result.get("verified"):
        raise SystemExit(f"{path} path: moved {stored_size} / received {received} of {size} bytes, "
                         f"checksum verified by the receiving task: {bool(result.get('verified'))}")
    cpu["receiving_task"] = float(result["cpu_s"])
    return Moved(result["done"] - start, cpu, received, float(result["peak_rss_mb"]))


# ---- the raw grpc.aio baseline ----------------------------------------------------------------


def tls_files(workdir: Path) -> tuple[Path, Path, Path]:
    """CA, certificate and key of the receiving member (the TLS baseline reuses them)."""
    return member_tls_files(workdir, RECEIVER)


async def raw_server(port: int, tls_dir: str) -> None:
    async def upload(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        total = 0
        async for data in requests:
            total += len(data)
        return str(total).encode()

    handler = grpc.method_handlers_generic_handler(
        "bench.Raw", {"Upload": grpc.stream_unary_rpc_method_handler(upload)}
    )
    server = grpc.aio.server(options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    if tls_dir:
        ca, cert, key = tls_files(Path(tls_dir))
        credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())], ca.read_bytes(), True)
        server.add_secure_port(f"127.0.0.1:{port}", credentials)
    else:
        server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def raw_client(port: int, size: int, tls_dir: str) -> float:
    block = payload_block()
    target = f"127.0.0.1:{port}"
    if tls_dir:
        ca, cert, key = tls_files(Path(tls_dir))  # the server's own pair doubles as the client's
        credentials = grpc.ssl_channel_credentials(ca.read_bytes(), key.read_bytes(), cert.read_bytes())
        options = [*GRPC_OPTIONS, ("grpc.ssl_target_name_override", RECEIVER)]
        channel_cm = grpc.aio.secure_channel(target, credentials, options=options)
    else:
        channel_cm = grpc.aio.insecure_channel(target, options=GRPC_OPTIONS)
    async with channel_cm as channel:
        await channel.channel_ready()
        upload = channel.stream_unary(RAW_METHOD)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(size // CHUNK):
                yield block

        start = time.perf_counter()
        reply = await upload(chunks())
        elapsed = time.perf_counter() - start
    if int(reply) != size:
        raise SystemExit(f"raw baseline moved {int(reply)} of {size} bytes")
    return size / CHUNK / elapsed


class RawServer:
    """A bare grpc.aio server process (plain, or mutual TLS with the certificates in `tls_dir`)."""

    def __init__(self, tls_dir: str = "") -> None:
        self.tls_dir = tls_dir
        self.port = free_port()
        command = [sys.executable, __file__, "--raw-server", str(self.port), "--tls-dir", tls_dir]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    def __enter__(self) -> RawServer:
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.__exit__()
            raise SystemExit("the raw grpc.aio server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()

    def stream(self, size: int) -> tuple[float, float]:
        """MB/s of one raw client stream of `size` bytes, and the CPU seconds of client and server."""
        cpu0 = process_cpu_seconds(os.getpid(), False) + process_cpu_seconds(self.process.pid)
        rate = asyncio.run(raw_client(self.port, size, self.tls_dir))
        return rate, process_cpu_seconds(os.getpid(), False) + process_cpu_seconds(self.process.pid) - cpu0


def per_gib_text(cpu: dict[str, float], gib: float) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {seconds / gib:.2f}" for name, seconds in cpu.items())


def run_all(size: int, workdir: Path, repeat: int) -> dict[str, Any]:
    """`repeat` rounds, each one Weft transfer over the product's path, one through both services,
    one raw plain stream and one raw TLS stream.

    Interleaving puts each Weft run beside baseline runs made under the same machine load,
    so a slow or fast spell of the machine moves both sides of a ratio alike.
    """
    block = payload_block()
    gib = size / (1 << 30)
    members = LocalCluster(workdir, [SENDER, RECEIVER], transfer={"window_mb": 8, "mailbox_memory_mb": 64})
    runs: dict[str, list[Any]] = {"weft": [], "service": [], "raw": [], "raw_tls": [], "weft_cpu": [],
                                  "service_cpu": [], "raw_cpu": [], "raw_tls_cpu": [], "load": [],
                                  "receiving_task_peak_rss_mb": [], "weft_cpu_by_process": [],
                                  "service_cpu_by_process": [], "weft_bytes_verified": [],
                                  "service_bytes_verified": []}
    with members, RawServer() as plain, RawServer(str(workdir)) as tls:
        for run in range(repeat):
            weft = move_once(members, f"bench-{run}", block, size)
            service = move_once(members, f"service-{run}", block, size, path="service")
            cpu, service_cpu = weft.cpu_s, service.cpu_s
            for side, moved in (("weft", weft), ("service", service)):
                runs[side].append(size / CHUNK / moved.elapsed_s)
                runs[f"{side}_cpu"].append(sum(moved.cpu_s.values()))
                runs[f"{side}_cpu_by_process"].append(moved.cpu_s)
                runs[f"{side}_bytes_verified"].append(moved.bytes_verified)
                runs["receiving_task_peak_rss_mb"].append(moved.receiving_task_peak_rss_mb)
            rate, raw_cpu = plain.stream(size)
            runs["raw"].append(rate)
            runs["raw_cpu"].append(raw_cpu)
            rate, tls_cpu = tls.stream(size)
            runs["raw_tls"].append(rate)
            runs["raw_tls_cpu"].append(tls_cpu)
            runs["load"].append(load_average()[0])
            report(f"round {run + 1}", f"Weft {runs['weft'][-1]:.0f} MB/s, through both services "
                   f"{runs['service'][-1]:.0f} MB/s, bare {runs['raw'][-1]:.0f} MB/s (ratio "
                   f"{runs['weft'][-1] / runs['raw'][-1]:.3f}, through both services "
                   f"{runs['service'][-1] / runs['raw'][-1]:.3f}), bare TLS {runs['raw_tls'][-1]:.0f} MB/s; "
                   f"core-s per GiB: Weft {runs['weft_cpu'][-1] / gib:.2f} ({per_gib_text(cpu, gib)}), through "
                   f"both services {runs['service_cpu'][-1] / gib:.2f} ({per_gib_text(service_cpu, gib)}), bare "
                   f"{raw_cpu / gib:.2f}, bare TLS {tls_cpu / gib:.2f}; {load_text()}")
        return {
            **runs,
            "peak_rss_mb_sender": rss_mb(members[SENDER].pid)[1],
            "peak_rss_mb_receiver": rss_mb(members[RECEIVER].pid)[1],
            "peak_rss_mb_sending_task": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def median_by_process(rounds: list[dict[str, float]], size: int) -> dict[str, float]:
    """Each process's median CPU seconds per GiB over the rounds."""
    return {name: round(statistics.median(cpu[name] for cpu in rounds) * (1 << 30) / size, 3) for name in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="MiB to move (default 1024)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved rounds (>= 3); the figures are the medians (default 3)")
    parser.add_argument("--raw-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tls-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--receive-task", help=argparse.SUPPRESS)
    parser.add_argument("--session", default="bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        asyncio.run(raw_server(args.raw_server, args.tls_dir))
        return
    if args.receive_task:
        receiving_task(args.receive_task, args.session)
        return
    if args.size_mb < 1 or args.repeat < MIN_ROUNDS:
        parser.error(f"--size-mb must be at least 1 and --repeat at least {MIN_ROUNDS}")
    size = args.size_mb * CHUNK
    reuse_large_buffers()  # this process plays the tasks, which set the allocator as task processes do
    with tempfile.TemporaryDirectory(prefix="weft-bench-transfer-") as workdir:
        runs = run_all(size, Path(workdir), args.repeat)
    weft, service, raw, raw_tls = (statistics.median(runs[side]) for side in ("weft", "service", "raw", "raw_tls"))
    for label, side in (("weft", "weft"), ("through both services", "service"), ("raw grpc", "raw"),
                        ("raw grpc TLS", "raw_tls")):
        print(f"{label} runs (MB/s): {', '.join(f'{rate:.0f}' for rate in runs[side])}")

    def ratios(side: str, base: str) -> list[float]:
        # A round whose baseline used no measurable CPU (under one clock tick: a tiny --size-mb)
        # has no ratio; the others still do.
        found = [w / r for w, r in zip(runs[side], runs[base], strict=True) if r > 0]
        if not found:
            raise SystemExit(f"transfer: no round measured {base} above zero; the message is too small "
                             f"to time (--size-mb {args.size_mb}), use 64 or more")
        return found

    product: dict[str, Any] = {
        "mb_s": round(weft, 1),
        "runs_mb_s": [round(rate, 1) for rate in runs["weft"]],
        "ratio": round(statistics.median(ratios("weft", "raw")), 3),
        "ratio_min": round(min(ratios("weft", "raw")), 3),
        "ratio_max": round(max(ratios("weft", "raw")), 3),
        "ratio_vs_tls": round(statistics.median(ratios("weft", "raw_tls")), 3),
        "cpu_ratio": round(statistics.median(ratios("weft_cpu", "raw_cpu")), 3),
        "cpu_s_per_gib": round(statistics.median(runs["weft_cpu"]) * (1 << 30) / size, 3),
        "cpu_s_per_gib_by_process": median_by_process(runs["weft_cpu_by_process"], size),
        "bytes_verified": runs["weft_bytes_verified"],
    }
    result = {
        "size_mb": args.size_mb,
        "repeat": args.repeat,
        "weft_mb_s": product["mb_s"],
        "raw_grpc_mb_s": round(raw, 1),
        "ratio": product["ratio"],
        "ratio_min": product["ratio_min"],
        "ratio_max": product["ratio_max"],
        "raw_grpc_tls_mb_s": round(raw_tls, 1),
        "ratio_vs_tls": product["ratio_vs_tls"],
        "peak_rss_mb_sender": round(runs["peak_rss_mb_sender"], 1),
        "peak_rss_mb_receiver": round(runs["peak_rss_mb_receiver"], 1),
        "weft_runs_mb_s": product["runs_mb_s"],
        "raw_grpc_runs_mb_s": [round(rate, 1) for rate in runs["raw"]],
        "cpu_ratio": product["cpu_ratio"],
        "weft_cpu_s_per_gib": product["cpu_s_per_gib"],
        "raw_grpc_cpu_s_per_gib": round(statistics.median(runs["raw_cpu"]) * (1 << 30) / size, 3),
        "peak_rss_mb_sending_task": round(runs["peak_rss_mb_sending_task"], 1),
        "peak_rss_mb_receiving_task": round(max(runs["receiving_task_peak_rss_mb"]), 1),
        "load": list(load_average()),
        "round_loads": runs["load"],
        "weft_cpu_s_per_gib_by_process": product["cpu_s_per_gib_by_process"],
        # The product's path is the direct path: the same runs under the direct path's keys.
        **{f"direct_{key}": value for key, value in product.items()},
        "service_mb_s": round(service, 1),
        "service_runs_mb_s": [round(rate, 1) for rate in runs["service"]],
        "service_ratio": round(statistics.median(ratios("service", "raw")), 3),
        "service_ratio_min": round(min(ratios("service", "raw")), 3),
        "service_ratio_max": round(max(ratios("service", "raw")), 3),
        "service_ratio_vs_tls": round(statistics.median(ratios("service", "raw_tls")), 3),
        "service_cpu_ratio": round(statistics.median(ratios("service_cpu", "raw_cpu")), 3),
        "service_cpu_s_per_gib": round(statistics.median(runs["service_cpu"]) * (1 << 30) / size, 3),
        "service_cpu_s_per_gib_by_process": median_by_process(runs["service_cpu_by_process"], size),
        "service_bytes_verified": runs["service_bytes_verified"],
    }
    print(f"Weft (task -> peer's service with a ticket, TLS): {result['weft_mb_s']} MB/s")
    print(f"through both services (TLS, 2 hops):             {result['service_mb_s']} MB/s")
    print(f"raw grpc.aio stream (loopback):                  {result['raw_grpc_mb_s']} MB/s")
    print(f"raw grpc.aio stream (loopback, TLS):             {result['raw_grpc_tls_mb_s']} MB/s")
    print(f"ratio {result['ratio']} (median of {args.repeat} rounds, min {result['ratio_min']}, max "
          f"{result['ratio_max']}; target >= 0.5 in every round); CPU per GiB Weft {result['weft_cpu_s_per_gib']}, "
          f"bare {result['raw_grpc_cpu_s_per_gib']} (ratio {result['cpu_ratio']})")
    print(f"through both services: ratio {result['service_ratio']} (min {result['service_ratio_min']}, max "
          f"{result['service_ratio_max']}); CPU per GiB {result['service_cpu_s_per_gib']} "
          f"(ratio {result['service_cpu_ratio']}): {result['service_cpu_s_per_gib_by_process']}")
    print(f"peak RSS: sending service {result['peak_rss_mb_sender']} MB, receiving service "
          f"{result['peak_rss_mb_receiver']} MB (target < 300), sending task {result['peak_rss_mb_sending_task']} MB, "
          f"receiving task {result['peak_rss_mb_receiving_task']} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
