"""Settings of a vendor adapter, read from `GARRISON_<VENDOR>_*` by a composition root.

Each vendor declares a subclass with its own prefix and fields (secrets as `SecretStr`);
`load_vendor_settings` refuses an incomplete configuration with a message naming the variables.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field, ValidationError
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
