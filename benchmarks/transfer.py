"""Transfer benchmark: bytes between two members' transfer services (TLS) beside a raw grpc.aio stream.

Run from the repository root:

    python benchmarks/transfer.py               # 1 GiB
    python benchmarks/transfer.py --size-mb 64  # a quick check

Two members' transfer services run as separate processes on loopback with mutual TLS.
A sending task streams the message into member A's service (Send), which forwards it to
member B's service (Deliver) and acknowledges once B stored it; a receiving task reads it
from B's service (Receive). The Weft figure is the message size divided by the time from
the first byte sent to the last byte received. The baseline streams the same chunks with a
plain grpc.aio client-streaming call to a bare server process on loopback (no TLS, no
mailbox, no second hop); `ratio` is against that plain baseline. For context the same bare
stream is also timed with mutual TLS (`raw_grpc_tls_mb_s`, `ratio_vs_tls`). The last line
printed is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernel.federation.base import Party  # noqa: E402
from protos.weft.v1 import common_pb2, transfer_pb2  # noqa: E402
from services.transfer.local_cluster import LocalCluster, free_port, rss_mb  # noqa: E402

SENDER, RECEIVER = "a" * 32, "b" * 32
PROMOTER, ARBITER = Party("promoter", SENDER), Party("arbiter", RECEIVER)
VARIABLE = "DistributionTransferVariable.local_statistics"  # promoter -> arbiter
CHUNK = 1024 * 1024
RAW_METHOD = "/bench.Raw/Upload"
GRPC_OPTIONS = [("grpc.max_send_message_length", 2 * CHUNK), ("grpc.max_receive_message_length", 2 * CHUNK)]


def payload_block() -> bytes:
    """One MiB of incompressible bytes; the message repeats it."""
    return os.urandom(CHUNK)


def weft_frames(block: bytes, size: int, session_id: str) -> Iterator[transfer_pb2.Frame]:
    chunks = size // CHUNK
    sha = hashlib.sha256()
    for _ in range(chunks):
        sha.update(block)
    digest = sha.digest()
    yield transfer_pb2.Frame(header=transfer_pb2.FrameHeader(
        message_id=uuid.uuid4().hex, session_id=session_id, name=VARIABLE, tag="bench",
        src=common_pb2.Party(role=PROMOTER.role, member_id=PROMOTER.member_id),
        dst=common_pb2.Party(role=ARBITER.role, member_id=ARBITER.member_id),
        total_size=chunks * CHUNK, checksum=digest, kind=transfer_pb2.PAYLOAD_KIND_OBJECT,
        created_at_ms=int(time.time() * 1000),
    ))
    for seq in range(chunks):
        yield transfer_pb2.Frame(chunk=transfer_pb2.FrameChunk(seq=seq, data=block))
    yield transfer_pb2.Frame(end=transfer_pb2.FrameEnd(chunk_count=chunks, total_size=chunks * CHUNK, checksum=digest))


def run_weft(size: int, workdir: Path) -> dict[str, float]:
    """Move `size` bytes A -> B through the transfer services; MB/s and each service's peak RSS."""
    block = payload_block()
    members = LocalCluster(workdir, [SENDER, RECEIVER], transfer={"window_mb": 8, "mailbox_memory_mb": 64})
    with members:
        session_id = "bench"
        members.register_session(session_id, [PROMOTER, ARBITER])
        received = {"bytes": 0}
        request = transfer_pb2.ReceiveRequest(
            session_id=session_id, name=VARIABLE, tag="bench", timeout_ms=600_000,
            src=common_pb2.Party(role=PROMOTER.role, member_id=SENDER),
            dst=common_pb2.Party(role=ARBITER.role, member_id=RECEIVER),
        )

        def receive() -> None:
            for frame in members[RECEIVER].stub().Receive(request, timeout=900):
                if frame.WhichOneof("kind") == "chunk":
                    received["bytes"] += len(frame.chunk.data)

        frames = list(weft_frames(block, size, session_id))  # every chunk references the same block
        receiver = threading.Thread(target=receive)
        start = time.perf_counter()
        receiver.start()
        ack = members[SENDER].stub().Send(iter(frames), timeout=900)
        receiver.join()
        elapsed = time.perf_counter() - start
        if ack.stored_size != size or received["bytes"] != size:
            raise SystemExit(f"moved {ack.stored_size} / received {received['bytes']} of {size} bytes")
        return {
            "weft_mb_s": size / CHUNK / elapsed,
            "weft_seconds": elapsed,
            "peak_rss_mb_sender": rss_mb(members[SENDER].pid)[1],
            "peak_rss_mb_receiver": rss_mb(members[RECEIVER].pid)[1],
        }


# ---- the raw grpc.aio baseline ----------------------------------------------------------------


def tls_files(workdir: Path) -> tuple[Path, Path, Path]:
    """CA, certificate and key of the receiving member (the TLS baseline reuses them)."""
    member = workdir / RECEIVER
    return workdir / "ca" / "ca.crt", member / f"{RECEIVER}.crt", member / f"{RECEIVER}.key"


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


def run_raw(size: int, tls_dir: str = "") -> float:
    port = free_port()
    command = [sys.executable, __file__, "--raw-server", str(port), "--tls-dir", tls_dir]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        return asyncio.run(raw_client(port, size, tls_dir))
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="MiB to move (default 1024)")
    parser.add_argument("--raw-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tls-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        asyncio.run(raw_server(args.raw_server, args.tls_dir))
        return
    size = args.size_mb * CHUNK
    with tempfile.TemporaryDirectory(prefix="weft-bench-transfer-") as workdir:
        weft = run_weft(size, Path(workdir))
        raw_tls = run_raw(size, workdir)
    raw = run_raw(size)
    result = {
        "size_mb": args.size_mb,
        "weft_mb_s": round(weft["weft_mb_s"], 1),
        "raw_grpc_mb_s": round(raw, 1),
        "ratio": round(weft["weft_mb_s"] / raw, 3),
        "raw_grpc_tls_mb_s": round(raw_tls, 1),
        "ratio_vs_tls": round(weft["weft_mb_s"] / raw_tls, 3),
        "peak_rss_mb_sender": round(weft["peak_rss_mb_sender"], 1),
        "peak_rss_mb_receiver": round(weft["peak_rss_mb_receiver"], 1),
    }
    print(f"Weft transfer services (TLS, 2 hops): {result['weft_mb_s']} MB/s")
    print(f"raw grpc.aio stream (loopback):       {result['raw_grpc_mb_s']} MB/s")
    print(f"raw grpc.aio stream (loopback, TLS):  {result['raw_grpc_tls_mb_s']} MB/s")
    print(f"ratio {result['ratio']} (target >= 0.5); peak RSS sender {result['peak_rss_mb_sender']} MB, "
          f"receiver {result['peak_rss_mb_receiver']} MB (target < 300)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
