"""Constants of the storage package: file names and the rule data-set names follow."""

from __future__ import annotations

import re
from typing import Final

# The sidecar every data-set directory holds; its leading "_" makes Parquet readers skip it.
META_FILE: Final = "_weft_meta.json"

# The single Parquet file an import or an in-memory write produces.
DATA_FILE: Final = "part-00000.parquet"

# Prefixes of the scratch directories a write uses before its atomic rename.
TEMP_PREFIX: Final = ".tmp-"
TRASH_PREFIX: Final = ".trash-"

# Namespaces and names: a letter or digit, then letters, digits, "_", "-", "."; no "..".
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

# How many offending id values an error message quotes.
DUPLICATE_EXAMPLES: Final = 5

# The part files of a task's scratch tables (see kernel.storage.scratch).
SCRATCH_PART_TEMPLATE: Final = "part-{index:05d}.parquet"
