"""A task's exported model as JSON, for GetModel: what the board's model page draws."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kernel.errors import NotFound
from kernel.federation.codec import decode
from kernel.tracker import MODEL_FILE


def _plain(value: Any) -> Any:
    """The decoded model with numpy values as lists and numbers, and non-finite floats as null."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def model_json(version_dir: str) -> str:
    """The model stored in one version folder (`<model_root>/.../v<N>`) as JSON text."""
    path = Path(version_dir) / MODEL_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"the model file of {version_dir} is gone") from None
    return json.dumps(_plain(decode(raw)))
