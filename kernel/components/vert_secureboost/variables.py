"""The messages of VertSecureBoost, declared with their payload types (checked against transfer_variable.json).

Most payloads are dicts whose fields `kernel.blocks.payloads` checks where they are read
(the check needs the tree's sizes); they are declared `object` so that a malformed one
reaches that check and fails with the field's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kernel.components.vert_secureboost.constants import COMPONENT
from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.errors import InvalidArgument
from kernel.federation.variables import Channel, VariableSet
from kernel.security.paillier import PaillierPublicKey


def _public_key(value: Any, what: str) -> PaillierPublicKey:
    if not isinstance(value, PaillierPublicKey):
        raise InvalidArgument(f"{COMPONENT}: the promoter's pubkey is not a Paillier public key")
    return value


class VertSecureBoostVariables(VariableSet, component=COMPONENT, group="VertSecureBoostTransferVariable",
                               source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Setup, then per tree the encrypted gradients (`encrypted_gh`: at the tree's scope the
    count of chunks and rows, at (tree, chunk) each chunk) and per level plans, histograms and
    splits, the level's rows streamed at (tree, level, message): `node_rows` (row index, node
    position) and `split_rows` (row index, goes left); prediction walks the trees level by
    level, its pairs streamed at (level, message): `predict_rows` (pair, row index, split id)
    and `predict_directions` (pair, goes left)."""

    pubkey = Channel(PaillierPublicKey, src=PROMOTER, dst=(PROVIDER,), check=_public_key)
    train_setup = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    setup_ack = Channel(dict, src=PROVIDER, dst=(PROMOTER,))
    encrypted_gh = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    node_plan = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    node_rows = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    encrypted_histogram = Channel(object, src=PROVIDER, dst=(PROMOTER,))
    split_request = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    split_result = Channel(object, src=PROVIDER, dst=(PROMOTER,))
    split_rows = Channel(object, src=PROVIDER, dst=(PROMOTER,))
    predict_setup = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    predict_ack = Channel(dict, src=PROVIDER, dst=(PROMOTER,))
    predict_request = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    predict_rows = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    predict_directions = Channel(object, src=PROVIDER, dst=(PROMOTER,))
