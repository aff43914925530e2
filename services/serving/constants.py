"""Constants of the serving service: file layout, supported modules, service names."""

from __future__ import annotations

from typing import Final

#: Under <data_dir>: published models (one folder per name, one JSON file per version).
SERVING_DIR: Final = "serving"
MODELS_DIR: Final = "models"
CURRENT_FILE: Final = "current"
AUDIT_FILE: Final = "audit.log"

#: The model components that can be published, and how each is scored online.
VERT_LR: Final = "VertLR"
VERT_SECUREBOOST: Final = "VertSecureBoost"
HORZ_LR: Final = "HorzLR"
#: A scorecard on a VertLR model: points per feature at each member, the score at the promoter.
SCORE_CARD: Final = "ScoreCard"
SERVABLE_MODULES: Final = frozenset({VERT_LR, VERT_SECUREBOOST, HORZ_LR, SCORE_CARD})

#: Preprocessing components applied online before the model, with that member's fitted model.
DATA_IO: Final = "DataIO"
FILL_MISSING: Final = "FillMissing"
SCALE: Final = "Scale"
ONE_HOT: Final = "OneHot"
BINNING: Final = "VertFeatureBinning"
WOE: Final = "WOE"
PREPROCESSING_MODULES: Final = frozenset({DATA_IO, FILL_MISSING, SCALE, ONE_HOT, BINNING, WOE})
#: Components upstream of a model that only select or align rows (online there is one row),
#: or only drop columns (the model reads its own features by name): they pass.
ROW_SELECTING_MODULES: Final = frozenset({"Intersection", "DataSplit", "Sample", "Union", "FeatureSelection"})

#: Which input of a model component carries the training rows (the chain is followed through it).
TRAINING_INPUTS: Final = ("train_data", "data")

CLIENT_SERVICE: Final = "weft.v1.ServingService"
PEER_SERVICE: Final = "weft.v1.ServingPeerService"

#: A model name names a folder: a plain name only.
MODEL_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

#: Extra time a relayed peer call gets at the transfer services beyond the model's deadline
#: (the promoter's own deadline is what the caller sees).
RELAY_GRACE_S: Final = 1.0

#: Wait at most this long for each of the other members while publishing, rolling back, unpublishing.
MANAGEMENT_TIMEOUT_S: Final = 30.0
