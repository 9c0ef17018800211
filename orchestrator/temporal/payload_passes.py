"""The Temporal SDK's payload passes over workflow activations, skipped where they can change
nothing.

temporalio 1.35 walks every payload of every workflow activation three times on the way in
(storage references, external storage, codec) and three times on the way out, and for each
payload sequence asks the workflow's sandbox for the command's serialisation context (code run
in the sandbox, per sequence). With no payload codec and no external storage, every one of these
passes returns its input unchanged: the SDK's own `DataConverter._decode_payload_has_effect` is
False for exactly that case. Garrison configures neither (`orchestrator/temporal/converter.py`),
and the passes cost 9.6% of the worker's main thread in a `garrison simulate` of the corpus
(py-spy, GIL samples), most of it in the sandbox's context lookups.

`install()` wraps the two module functions the workflow worker calls, so that an activation whose
data converter has neither a codec nor external storage skips them, and any other is passed to
the SDK's own functions untouched. What is lost in the skipped case is one diagnostic: a payload
stored externally by some other client reaches the converter as a reference (it fails to decode
there, instead of with the SDK's TMPRL1105 message). It is installed only on the SDK version it
was written against (`WRITTEN_FOR`, pinned in pyproject.toml); on any other the SDK runs as
shipped and `test_payload_passes` fails, asking for this to be looked at again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import temporalio
import temporalio.bridge.worker as bridge_worker
from temporalio.converter import DataConverter
from temporalio.converter._extstore import StorageOperationMetrics

WRITTEN_FOR = "1.35.0"

_Pass = Callable[..., Awaitable[StorageOperationMetrics]]
_original_decode: _Pass = bridge_worker.decode_activation
_original_encode: _Pass = bridge_worker.encode_completion


def _skipping(original: _Pass) -> _Pass:
    """`original` (the SDK's pass over an activation or a completion), skipped when its data
    converter has neither a codec nor external storage."""

    async def passes(
        message: Any, data_converter: DataConverter, *args: Any, **kwargs: Any
    ) -> StorageOperationMetrics:
        if data_converter.payload_codec is None and data_converter.external_storage is None:
            return StorageOperationMetrics()
        return await original(message, data_converter, *args, **kwargs)

    return passes


decode_activation = _skipping(_original_decode)
encode_completion = _skipping(_original_encode)


def install() -> bool:
    """Skip the passes from now on in this process (idempotent); False on another SDK version."""
    if temporalio.__version__ != WRITTEN_FOR:
        return False
    bridge_worker.decode_activation = decode_activation
    bridge_worker.encode_completion = encode_completion
    return True


def installed() -> bool:
    return bridge_worker.decode_activation is decode_activation
