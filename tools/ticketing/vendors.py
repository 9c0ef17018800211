"""The ticketing vendors Garrison ships: Jira Cloud and ServiceNow."""

from __future__ import annotations

from pydantic import SecretStr

from tools.ticketing.emulators import jira as jira_emulator
from tools.ticketing.emulators import servicenow as servicenow_emulator
from tools.ticketing.jira import JiraSettings, JiraTicketing
from tools.ticketing.servicenow import ServiceNowSettings, ServiceNowTicketing
from tools.vendor_spec import Capability, VendorSpec


def _jira_emulator_settings(base_url: str) -> JiraSettings:
    return JiraSettings(
        base_url=base_url,
        email=jira_emulator.EMAIL,
        api_token=SecretStr(jira_emulator.API_TOKEN),
        project=jira_emulator.PROJECT,
    )


def _servicenow_emulator_settings(base_url: str) -> ServiceNowSettings:
    return ServiceNowSettings(
        base_url=base_url,
        username=servicenow_emulator.USERNAME,
        password=SecretStr(servicenow_emulator.PASSWORD),
    )


VENDORS: tuple[VendorSpec, ...] = (
    VendorSpec(
        name="jira",
        title="Jira Cloud",
        capability=Capability.TICKETING,
        settings=JiraSettings,
        build=JiraTicketing,
        emulator=jira_emulator.build_emulator,
        emulator_settings=_jira_emulator_settings,
    ),
    VendorSpec(
        name="servicenow",
        title="ServiceNow",
        capability=Capability.TICKETING,
        settings=ServiceNowSettings,
        build=ServiceNowTicketing,
        emulator=servicenow_emulator.build_emulator,
        emulator_settings=_servicenow_emulator_settings,
    ),
)
