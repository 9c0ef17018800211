"""Settings of a vendor adapter, read from `GARRISON_<VENDOR>_*` by a composition root.

Each vendor declares a subclass with its own prefix and fields (secrets as `SecretStr`);
`load_vendor_settings` refuses an incomplete configuration with a message naming the variables.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound="VendorSettings")


class VendorConfigError(Exception):
    """A vendor's configuration is missing or wrong; the message names the variables."""


class VendorSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    base_url: str = Field(min_length=1)
    timeout_s: float = Field(default=30.0, gt=0)
    rate_per_minute: float = Field(default=300.0, gt=0)


def env_prefix(cls: type[VendorSettings]) -> str:
    return str(cls.model_config.get("env_prefix", "")).upper()


def load_vendor_settings(cls: type[S]) -> S:
    try:
        return cls()  # pyright: ignore[reportCallIssue]  (fields come from the environment)
    except ValidationError as error:
        prefix = env_prefix(cls)
        problems = []
        for detail in error.errors():
            name = prefix + "_".join(str(p) for p in detail["loc"]).upper()
            missing = detail["type"] == "missing"
            problems.append(f"{name} is required" if missing else f"{name}: {detail['msg']}")
        raise VendorConfigError("; ".join(problems)) from None


def is_configured(cls: type[VendorSettings]) -> bool:
    try:
        load_vendor_settings(cls)
    except VendorConfigError:
        return False
    return True


def env_assignments(settings: VendorSettings) -> dict[str, str]:
    """The variables that reproduce these settings (every field that is required or differs from
    its default): what an operator exports to point an adapter at, say, an emulator."""
    prefix = env_prefix(type(settings))
    assignments: dict[str, str] = {}
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if (
            field.is_required()
            or name == "base_url"
            or value != field.get_default(call_default_factory=True)
        ):
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            assignments[f"{prefix}{name.upper()}"] = str(value)
    return assignments
