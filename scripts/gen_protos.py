"""Regenerate the Python modules of protos/weft/v1/*.proto, or check that the committed ones are current."""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = REPO_ROOT / "protos"
PACKAGE_DIR = PROTO_ROOT / "weft" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")
# protoc writes imports relative to the proto path (`from weft.v1 import x_pb2`); the modules
# live in the `protos` package, so imports must name it.
IMPORT_PATTERN = re.compile(r"^(from|import) weft\.v1\b", re.MULTILINE)


def proto_files() -> list[Path]:
    """The .proto sources, in a stable order."""
    return sorted(PACKAGE_DIR.glob("*.proto"))


def generated_names(protos: list[Path]) -> list[str]:
    """File names the generator produces for these sources."""
    return sorted(proto.stem + suffix for proto in protos for suffix in GENERATED_SUFFIXES)


def generate(out_root: Path) -> Path:
    """Run protoc into `out_root` and fix the imports; returns the folder holding the modules."""
    from grpc_tools import protoc  # imported here so --help works without grpcio-tools

    protos = proto_files()
    if not protos:
        raise SystemExit(f"no .proto files under {PACKAGE_DIR.relative_to(REPO_ROOT)}")
    include_dir = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={include_dir}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *(str(proto.relative_to(PROTO_ROOT)) for proto in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    out_dir = out_root / "weft" / "v1"
    for name in generated_names(protos):
        path = out_dir / name
        text = path.read_text(encoding="utf-8")
        path.write_text(IMPORT_PATTERN.sub(r"\1 protos.weft.v1", text), encoding="utf-8")
    return out_dir


def committed_generated_files() -> list[str]:
    """Generated-looking files currently in the package folder."""
    return sorted(
        path.name for path in PACKAGE_DIR.iterdir() if path.name.endswith(GENERATED_SUFFIXES)
    )


def stale_files(fresh_dir: Path) -> list[str]:
    """Committed files that differ from, are missing from, or are absent in a fresh generation."""
    expected = generated_names(proto_files())
    stale = []
    for name in expected:
        committed = PACKAGE_DIR / name
        if not committed.exists():
            stale.append(f"{name} (missing)")
        elif not filecmp.cmp(committed, fresh_dir / name, shallow=False):
            stale.append(f"{name} (differs from its .proto)")
    for name in committed_generated_files():
        if name not in expected:
            stale.append(f"{name} (no .proto generates it)")
    return stale


def write(fresh_dir: Path) -> list[str]:
    """Copy a fresh generation into the package folder, dropping orphans; returns the names written."""
    expected = generated_names(proto_files())
    for name in committed_generated_files():
        if name not in expected:
            (PACKAGE_DIR / name).unlink()
    for name in expected:
        shutil.copyfile(fresh_dir / name, PACKAGE_DIR / name)
    return expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true",
        help="generate into a temporary folder and fail if the committed modules differ",
    )
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="weft-protos-") as temp:
        fresh_dir = generate(Path(temp))
        if options.check:
            stale = stale_files(fresh_dir)
            if stale:
                where = PACKAGE_DIR.relative_to(REPO_ROOT)
                print(f"generated protobuf modules in {where} are stale:", file=sys.stderr)
                for entry in stale:
                    print(f"  {where / entry}", file=sys.stderr)
                print("run `make protos` (python scripts/gen_protos.py) and commit the result",
                      file=sys.stderr)
                return 1
            print(f"protobuf modules are current ({len(proto_files())} .proto files)")
            return 0
        written = write(fresh_dir)
    print(f"wrote {len(written)} modules into {PACKAGE_DIR.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
