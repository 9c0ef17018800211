"""The data converter of every Garrison client and worker: Temporal's pydantic converter, with one
JSON converter (and so one cache of pydantic `TypeAdapter`s) per process.

The SDK builds a new payload converter from its class whenever it gives a converter a
serialisation context: for each workflow it runs, and again for each activation it completes.
`PydanticPayloadConverter` gives each instance its own `TypeAdapter` cache, so every workflow
built the adapters of its inputs and results again (schema generation: CPU on each activation)
and kept them for as long as it stayed cached (about six per open incident). Sharing the JSON
converter keeps one adapter per type for the process; the payloads are byte for byte the same.
"""

from __future__ import annotations

from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

# Bounded like the SDK's per-instance cache: Garrison's payloads are a few dozen model types.
_JSON = PydanticJSONPlainPayloadConverter(max_cached_type_adapters=1024)


class SharedPydanticPayloadConverter(CompositePayloadConverter):
    """`PydanticPayloadConverter` whose JSON converter is the process's one (`_JSON`)."""

    def __init__(self) -> None:
        super().__init__(
            *(
                _JSON if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER = DataConverter(payload_converter_class=SharedPydanticPayloadConverter)
