"""Write docs/components.md and docs/configuration.md from the code; --check fails when stale."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pydantic import BaseModel  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from kernel.registry import registry  # noqa: E402
from services.common.config import MemberConfig  # noqa: E402

COMPONENTS_DOC = REPO / "docs" / "components.md"
CONFIG_DOC = REPO / "docs" / "configuration.md"


def _type_name(annotation: Any) -> str:
    plain = isinstance(annotation, type) and getattr(annotation, "__origin__", None) is None
    text = annotation.__name__ if plain else str(annotation)
    return text.replace("typing.", "").replace("NoneType", "None").replace("|", "\\|")


def _default(field: Any, overrides: dict[str, Any] | None = None, name: str = "") -> str:
    if overrides is not None and name in overrides and not isinstance(overrides[name], dict):
        return "`" + json.dumps(overrides[name], default=str) + "`"
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()
    else:
        return "(required)"
    if isinstance(value, BaseModel):
        return "(section)"
    return "`" + json.dumps(value, default=str) + "`"


def _param_rows(model: type[BaseModel], prefix: str = "", overrides: dict[str, Any] | None = None) -> list[str]:
    """One row per parameter; the default is the one a job gets (`default_runtime.json` first)."""
    rows = []
    overrides = overrides or {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = overrides.get(name)
            rows.extend(_param_rows(annotation, f"{prefix}{name}.", nested if isinstance(nested, dict) else None))
            continue
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | `{_type_name(annotation)}` | {_default(field, overrides, name)} "
                    f"| {description} |")
    return rows


def _defaults_notes(param_class: type[BaseModel]) -> list[str]:
    """The paragraphs of a parameter class's docstring that start with "Defaults" (their choice and cost)."""
    import inspect

    text = inspect.cleandoc(param_class.__doc__ or "")
    notes = [p for p in text.split("\n\n") if p.startswith("Defaults")]
    return [line for note in notes for line in (*note.splitlines(), "")]


def components_doc() -> str:
    lines = ["# Component reference", "",
             "Generated from each component's `setting.json`, `default_runtime.json` and parameter class",
             "by `python scripts/gen_reference_docs.py`; a test fails when this page is stale.", ""]
    for module, spec in sorted(registry().items()):
        param_class = spec.param_class()
        lines += [f"## {module}", "", (param_class.__doc__ or "").strip().splitlines()[0], "",
                  *_defaults_notes(param_class),
                  f"- folder: `kernel/components/{spec.folder}/`",
                  f"- roles: {', '.join(spec.roles)}",
                  f"- parameters: `{param_class.__name__}` (in the job spec: `params`, `role_params.<role>`)"]
        if spec.default_runtime:
            lines.append(f"- `default_runtime.json` sets: `{json.dumps(spec.default_runtime)}` "
                         "(the defaults below include these)")
        lines += ["", "| parameter | type | default | meaning |", "|---|---|---|---|",
                  *_param_rows(param_class, overrides=spec.default_runtime), ""]
        if spec.transfer_variables:
            lines += ["| transfer variable | from | to |", "|---|---|---|"]
            for variable in spec.transfer_variables.values():
                lines.append(f"| `{variable.full_name}` | {', '.join(variable.src)} | {', '.join(variable.dst)} |")
            lines.append("")
    return "\n".join(lines)


def _config_rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        key = f"{prefix}{name}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.append(f"| `{key}` | section | | {(annotation.__doc__ or '').strip().splitlines()[0]} |")
            rows.extend(_config_rows(annotation, f"{key}."))
            continue
        env = "WEFT_" + key.upper().replace(".", "__")
        rows.append(f"| `{key}` | `{_type_name(annotation)}` | {_default(field)} | "
                    f"{(field.description or '').replace('|', chr(92) + '|')} (env `{env}`) |")
    return rows


def config_doc() -> str:
    lines = ["# Member configuration reference", "",
             "One YAML file per member configures its scheduler, executor and transfer service",
             "(`weft serve <service> --config member.yaml`). Every key can be overridden by an",
             "environment variable: `WEFT_` + the key in capitals, sections joined by `__`",
             "(`scheduler.listen` -> `WEFT_SCHEDULER__LISTEN`). Generated from",
             "`services/common/config.py` by `python scripts/gen_reference_docs.py`.", "",
             "| key | type | default | meaning |", "|---|---|---|---|", *_config_rows(MemberConfig),
             "", "`peers` maps a member id to `{endpoint, name}`: where that member's external",
             "transfer listener is.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a page differs from the code")
    args = parser.parse_args()
    stale = []
    for path, text in ((COMPONENTS_DOC, components_doc()), (CONFIG_DOC, config_doc())):
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run python scripts/gen_reference_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
