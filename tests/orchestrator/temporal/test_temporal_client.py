"""Task-queue names and TLS configuration (no server needed)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.settings import TemporalSettings
from orchestrator.temporal.client import Role, task_queue, tls_config


def test_task_queues_are_prefixed_per_role() -> None:
    settings = TemporalSettings(task_queue_prefix="soc")
    assert [task_queue(settings, role) for role in Role] == [
        "soc-triage",
        "soc-agents",
        "soc-actions",
    ]


def test_tls_is_off_unless_configured() -> None:
    assert tls_config(TemporalSettings(tls=False)) is None


def test_tls_reads_certificate_files(tmp_path: Path) -> None:
    for name in ("cert", "key", "ca"):
        (tmp_path / f"{name}.pem").write_bytes(name.encode())

    config = tls_config(
        TemporalSettings(
            tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem", tls_ca=tmp_path / "ca.pem"
        )
    )

    assert config is not None
    assert (config.client_cert, config.client_private_key, config.server_root_ca_cert) == (
        b"cert",
        b"key",
        b"ca",
    )


def test_tls_flag_alone_uses_system_roots() -> None:
    config = tls_config(TemporalSettings(tls=True))
    assert config is not None and config.server_root_ca_cert is None
