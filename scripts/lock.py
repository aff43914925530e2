"""Lock the dependencies: uv.lock from pyproject.toml, then one hashed requirements file per install set.

    python scripts/lock.py             # after editing pyproject.toml: re-lock, keeping pins that still fit
    python scripts/lock.py --upgrade   # move every pin to the newest release that fits
    python scripts/lock.py --check     # fail when pyproject.toml, uv.lock and requirements/ disagree (CI)

Images and `scripts/install-image.sh` install from `requirements/<set>.txt` with `pip --require-hashes`,
so two builds of one commit get the same packages. The sets:

    core   the dependencies of pyproject.toml: scheduler and transfer (no pyspark, no JRE needed)
    spark  core and the `spark` extra: the executor and the Spark executor pods
    build  core and the `build` extra (grpcio-tools): the image build stage that checks the protos
    dev    everything (`dev` pulls in `spark` and `build`): tests, lint, CI

Every set also carries the `install` dependency group (pip, setuptools, wheel) that installing the
project itself needs. uv comes with the dev set; `--uv PATH` names another uv binary.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
REQUIREMENTS_DIR: Final = REPO_ROOT / "requirements"
#: install set -> extras of pyproject.toml it adds to the core dependencies
INSTALL_SETS: Final[dict[str, tuple[str, ...]]] = {
    "core": (),
    "spark": ("spark",),
    "build": ("build",),
    "dev": ("dev",),
}
INSTALL_GROUP: Final = "install"
#: Python the images run; the lock itself is universal (every platform, Python >= 3.11).
LOCK_PYTHON: Final = "3.11"
HEADER: Final = ("# Locked install set '{name}' of Weft: do not edit; regenerate with `python scripts/lock.py`.\n"
                 "# Installed by scripts/install-image.sh with pip --require-hashes.\n")


def uv_command(explicit: str | None) -> list[str]:
    """How to run uv: --uv, else uv beside this Python (the dev set installs it), else on PATH."""
    if explicit:
        return [explicit]
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("uv")
    if found:
        return [found]
    raise SystemExit("lock: uv is not installed; install the dev set "
                     "(bash scripts/install-image.sh --venv .venv --editable --extras dev) or pass --uv")


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)


def export(uv: list[str], name: str, extras: tuple[str, ...]) -> str:
    """The requirements file of one install set, from uv.lock as it stands (never re-resolved)."""
    command = [*uv, "export", "--frozen", "--format", "requirements-txt", "--no-emit-project",
               "--no-header", "--no-default-groups", "--group", INSTALL_GROUP]
    for extra in extras:
        command += ["--extra", extra]
    result = run(command)
    if result.returncode != 0:
        raise SystemExit(f"lock: uv export of the {name} set failed:\n{result.stderr}")
    return HEADER.format(name=name) + result.stdout


def lock(uv: list[str], upgrade: bool) -> None:
    command = [*uv, "lock", "--python", LOCK_PYTHON, *(["--upgrade"] if upgrade else [])]
    result = run(command)
    if result.returncode != 0:
        raise SystemExit(f"lock: uv lock failed:\n{result.stderr}")
    REQUIREMENTS_DIR.mkdir(exist_ok=True)
    for name, extras in INSTALL_SETS.items():
        (REQUIREMENTS_DIR / f"{name}.txt").write_text(export(uv, name, extras))
        print(f"lock: wrote requirements/{name}.txt")


def check(uv: list[str]) -> int:
    """0 when uv.lock satisfies pyproject.toml and each requirements file is its export."""
    # --offline: an unchanged pyproject.toml is checked against the lock without the network; a
    # changed one cannot be resolved from an empty cache and fails, which is the answer wanted.
    result = run([*uv, "lock", "--check", "--offline", "--python", LOCK_PYTHON])
    if result.returncode != 0:
        print("lock: uv.lock does not match pyproject.toml; run `python scripts/lock.py` and commit "
              f"uv.lock and requirements/\n{result.stderr}", file=sys.stderr)
        return 1
    stale = []
    for name, extras in INSTALL_SETS.items():
        path = REQUIREMENTS_DIR / f"{name}.txt"
        want = export(uv, name, extras)
        have = path.read_text() if path.exists() else ""
        if have != want:
            stale.append(name)
            diff = difflib.unified_diff(have.splitlines(), want.splitlines(), f"requirements/{name}.txt",
                                        "uv export", lineterm="", n=0)
            print("\n".join(list(diff)[:40]), file=sys.stderr)
    if stale:
        print(f"lock: requirements/{{{','.join(stale)}}}.txt do not match uv.lock; "
              "run `python scripts/lock.py` and commit them", file=sys.stderr)
        return 1
    print(f"lock: uv.lock and requirements/{{{','.join(INSTALL_SETS)}}}.txt match pyproject.toml")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check; change nothing")
    parser.add_argument("--upgrade", action="store_true", help="move every pin to the newest release that fits")
    parser.add_argument("--uv", help="the uv binary to run (default: the one beside this Python, then PATH)")
    args = parser.parse_args(argv)
    uv = uv_command(args.uv or os.environ.get("WEFT_UV"))
    if args.check:
        return check(uv)
    lock(uv, args.upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
