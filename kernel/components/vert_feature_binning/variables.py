"""The messages of VertFeatureBinning, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.errors import InvalidArgument
from kernel.federation.variables import Channel, VariableSet
from kernel.security.paillier import EncryptedVector, PaillierPublicKey


def _public_key(value: Any, what: str) -> PaillierPublicKey:
    if not isinstance(value, PaillierPublicKey):
        raise InvalidArgument("VertFeatureBinning: the promoter's pubkey is not a Paillier public key")
    return value


class VertFeatureBinningVariables(VariableSet, component="VertFeatureBinning",
                                  group="VertFeatureBinningTransferVariable",
                                  source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Key and alignment, the encrypted labels, each provider's encrypted bin sums, its WOE and IV."""

    pubkey = Channel(PaillierPublicKey, src=PROMOTER, dst=(PROVIDER,), check=_public_key)
    # A provider answers any plan, aligned or not, so that the promoter learns why it stopped.
    alignment = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    alignment_ack = Channel(dict, src=PROVIDER, dst=(PROMOTER,))
    encrypted_labels = Channel(EncryptedVector, src=PROMOTER, dst=(PROVIDER,))
    encrypted_bin_sums = Channel(dict, src=PROVIDER, dst=(PROMOTER,))
    bin_woe = Channel(dict, src=PROMOTER, dst=(PROVIDER,))
