"""The audit anchor's sinks and where they may live: the file is created private and refused where
it protects nothing; syslog (UDP, TCP, a local socket) receives every head and, exported back to
a file, lets the verifier catch a cut tail; automatic anchors that fail are logged, not raised;
the schedule survives a failing round. The sinks do not depend on the database: SQLite only."""

from __future__ import annotations

import asyncio
import logging
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from orchestrator import composition
from orchestrator.settings import (
    ConfigError,
    FileAnchorTarget,
    GarrisonSettings,
    SyslogAnchorTarget,
    SyslogTransport,
    load_settings,
    parse_anchor_target,
)
from orchestrator.store import (
    AnchorEntry,
    AnchorError,
    AuditAnchor,
    AuditRecord,
    Store,
    SyslogAnchor,
)
from orchestrator.store.anchors import anchor_periodically
from tests.orchestrator.store.store_factories import T0, make_event, make_incident

STORE_KEY = "0123456789abcdef"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'garrison.db'}"


async def _open(url: str, anchor: AuditAnchor | SyslogAnchor, every: int = 100) -> Store:
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return await Store.open(url, anchor=anchor, anchor_every=every)


# -- the file ---------------------------------------------------------------------------------


def test_the_file_is_created_0600_in_a_0700_directory(tmp_path: Path) -> None:
    anchor = AuditAnchor(tmp_path / "state" / "garrison" / "audit-anchor.jsonl")

    anchor.secure([tmp_path / "data"])

    assert _mode(anchor.path) == 0o600
    assert _mode(anchor.path.parent) == 0o700


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_file_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "audit-anchor.jsonl"
    path.touch()
    path.chmod(mode)

    with pytest.raises(AnchorError, match=f"writable by group or others \\(mode 0{mode:o}\\)"):
        AuditAnchor(path).secure()


def test_a_directory_others_can_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    with pytest.raises(AnchorError, match=r"directory .* is writable by group or others"):
        AuditAnchor(shared / "audit-anchor.jsonl").secure()
    shared.chmod(0o1777)  # like /tmp: nobody else can remove or replace the file
    AuditAnchor(shared / "audit-anchor.jsonl").secure()
    assert _mode(shared / "audit-anchor.jsonl") == 0o600


def test_a_file_inside_the_database_directory_is_refused_even_through_a_link(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    link = outside / "audit-anchor.jsonl"
    link.symlink_to(data / "sub" / "audit-anchor.jsonl")

    for path in (data / "audit-anchor.jsonl", data / "sub" / "x.jsonl", link):
        with pytest.raises(AnchorError, match="beside the database it protects"):
            AuditAnchor(path).secure([data])
    assert not (data / "sub" / "audit-anchor.jsonl").exists()  # refused before creating


async def test_a_damaged_line_is_an_error_and_a_torn_last_line_is_not(tmp_path: Path) -> None:
    path = tmp_path / "audit-anchor.jsonl"
    good = AnchorEntry(seq=1, hash="a" * 64, at=T0).model_dump_json()
    path.write_text(f'{good}\n{{"seq": 2, "ha', encoding="utf-8")

    assert [a.seq for a in await AuditAnchor(path).entries()] == [1]
    path.write_text(f'{good}\n{{"seq": 2, "ha\n{good}\n', encoding="utf-8")
    with pytest.raises(AnchorError, match="line 2 is not an anchor entry"):
        await AuditAnchor(path).entries()


# -- where the default goes, and the settings ------------------------------------------------


def test_the_default_anchor_is_outside_the_data_dir_one_per_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    one = GarrisonSettings(data_dir=tmp_path / "one")
    again = GarrisonSettings(data_dir=tmp_path / "one")
    two = GarrisonSettings(data_dir=tmp_path / "two")
    pg = GarrisonSettings(database_url="postgresql://soc:secret@db.internal/garrison")
    pg_other_password = GarrisonSettings(database_url="postgresql://soc:other@db.internal/garrison")

    target = composition.anchor_target(one)

    assert isinstance(target, FileAnchorTarget)
    assert target.path.parent.parent == tmp_path / "state" / "garrison"
    assert target.path.name == "audit-anchor.jsonl"
    assert not target.path.is_relative_to(one.data_dir)
    assert composition.store_key(one) == composition.store_key(again)
    assert composition.store_key(one) != composition.store_key(two)
    assert composition.store_key(pg) == composition.store_key(pg_other_password)
    assert composition.store_key(pg) != composition.store_key(one)


def test_relative_xdg_state_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # the XDG spec says: ignore it

    assert GarrisonSettings().audit.state_dir == Path.home() / ".local" / "state" / "garrison"


async def test_open_store_creates_the_default_anchor_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    settings = GarrisonSettings(data_dir=tmp_path / "data")

    store = await composition.open_store(settings)
    try:
        await store.append_audit(make_event(1))
        await store.anchor_now()
    finally:
        await store.close()

    target = composition.anchor_target(settings)
    assert isinstance(target, FileAnchorTarget)
    assert [a.seq for a in await AuditAnchor(target.path).entries()] == [1]
    assert (_mode(target.path), _mode(target.path.parent)) == (0o600, 0o700)


@pytest.mark.parametrize("inside", ["data/audit-anchor.jsonl", "db/anchors/audit-anchor.jsonl"])
async def test_open_store_refuses_an_anchor_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inside: str
) -> None:
    monkeypatch.setenv("GARRISON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GARRISON_DATABASE_URL", f"sqlite:///{tmp_path / 'db' / 'garrison.db'}")
    monkeypatch.setenv("GARRISON_AUDIT__ANCHOR", f"file:{tmp_path / inside}")

    with pytest.raises(ConfigError, match="beside the database it protects"):
        await composition.open_store(load_settings())


UNIX, UDP, TCP = SyslogTransport.UNIX, SyslogTransport.UDP, SyslogTransport.TCP


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("file:/var/lib/anchor.jsonl", FileAnchorTarget(path=Path("/var/lib/anchor.jsonl"))),
        ("file:///var/lib/anchor.jsonl", FileAnchorTarget(path=Path("/var/lib/anchor.jsonl"))),
        ("syslog", SyslogAnchorTarget(transport=UNIX, address="/dev/log")),
        ("syslog:/run/s.sock", SyslogAnchorTarget(transport=UNIX, address="/run/s.sock")),
        ("syslog://logs.corp", SyslogAnchorTarget(transport=UDP, address="logs.corp", port=514)),
        ("syslog+tcp://[::1]:6514", SyslogAnchorTarget(transport=TCP, address="::1", port=6514)),
    ],
)
def test_anchor_settings_forms(value: str, target: SyslogAnchorTarget | FileAnchorTarget) -> None:
    assert parse_anchor_target(value) == target
    assert parse_anchor_target(str(target)) == target  # what the CLI prints reads back


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("GARRISON_AUDIT__ANCHOR", "s3://bucket/key", "expected file:PATH, syslog"),
        ("GARRISON_AUDIT__ANCHOR", "syslog://host:99999", "the port is not a number"),
        ("GARRISON_AUDIT__ANCHOR", "file:", "file: needs a path"),
        ("GARRISON_AUDIT__ANCHOR_INTERVAL_S", "0", "greater than 0"),
        ("GARRISON_AUDIT__ANCHOR_EVERY", "0", "greater than or equal to 1"),
    ],
)
def test_a_wrong_audit_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert str(raised.value).startswith(f"invalid configuration: {variable}: ")
    assert problem in str(raised.value)


# -- syslog -----------------------------------------------------------------------------------


def _exported(messages: list[bytes], tag: str) -> str:
    """What an operator's export does: keep this store's lines, drop everything before the JSON."""
    marker = f"{tag}: ".encode()
    return "".join(m.split(marker, 1)[1].decode() + "\n" for m in messages if marker in m)


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock


async def test_syslog_over_udp_receives_every_head_and_its_export_verifies(
    sqlite_url: str, udp_listener: socket.socket, tmp_path: Path
) -> None:
    port = udp_listener.getsockname()[1]
    target = SyslogAnchorTarget(transport=SyslogTransport.UDP, address="127.0.0.1", port=port)
    sink = SyslogAnchor(target, STORE_KEY)
    store = await _open(sqlite_url, sink, every=5)
    try:
        for n in range(12):
            await store.append_audit(make_event(n))
        await store.anchor_now()
        messages = [udp_listener.recv(2048) for _ in range(3)]  # seq 5, 10 and the head, 12
        with pytest.raises(AnchorError, match="cannot read back"):
            await store.verify_audit(store.anchor)
        exported = tmp_path / "exported.jsonl"
        exported.write_text(_exported(messages, f"garrison-audit[{STORE_KEY}]"), "utf-8")
        whole = await store.verify_audit(AuditAnchor(exported))
        async with store.engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_log WHERE seq > 10"))
        cut = await store.verify_audit(AuditAnchor(exported))
    finally:
        await store.close()

    assert all(m.startswith(f"<86>garrison-audit[{STORE_KEY}]: ".encode()) for m in messages)
    assert [a.seq for a in await AuditAnchor(exported).entries()] == [5, 10, 12]
    assert whole.ok and whole.anchors_matched == 3, whole.reason
    assert (cut.ok, cut.first_bad_seq) == (False, 11)


async def test_syslog_over_tcp_sends_octet_counted_frames(sqlite_url: str) -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = int((await reader.readuntil(b" ")).decode())
        await received.put(await reader.readexactly(length))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = SyslogAnchorTarget(transport=SyslogTransport.TCP, address="127.0.0.1", port=port)
    store = await _open(sqlite_url, SyslogAnchor(target, STORE_KEY))
    try:
        head = await store.append_audit(make_event(1))
        await store.anchor_now()
        message = await asyncio.wait_for(received.get(), 5)
    finally:
        await store.close()
        server.close()

    entry = AnchorEntry.model_validate_json(message.split(b": ", 1)[1])
    assert (entry.seq, entry.hash) == (1, head.hash)


async def test_syslog_to_a_local_socket(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as daemon:
        daemon.bind(str(path))
        daemon.settimeout(5)
        target = SyslogAnchorTarget(transport=SyslogTransport.UNIX, address=str(path))
        store = await _open(sqlite_url, SyslogAnchor(target, STORE_KEY))
        try:
            head = await store.append_audit(make_event(1))
            await store.anchor_now()
            message = daemon.recv(2048)
        finally:
            await store.close()

    assert message.startswith(f"<86>garrison-audit[{STORE_KEY}]: ".encode())
    entry = AnchorEntry.model_validate_json(message.split(b": ", 1)[1])
    assert (entry.seq, entry.hash) == (1, head.hash)


# -- failures -----------------------------------------------------------------------------------


async def test_automatic_anchors_that_fail_are_logged_and_anchor_now_raises(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = SyslogAnchorTarget(transport=SyslogTransport.UNIX, address=str(tmp_path / "no.sock"))
    store = await _open(sqlite_url, SyslogAnchor(gone, STORE_KEY), every=2)
    try:
        await store.ensure_incident(make_incident("inc-1"))
        with caplog.at_level(logging.ERROR, logger="orchestrator.store.anchors"):
            for n in range(2):  # the second is an every-2 anchor
                await store.append_audit(make_event(n))
            closed = await store.close_incident("inc-1", "done", T0)
        with pytest.raises(AnchorError, match=r"no\.sock"):
            await store.anchor_now()
        entries = len(await store.audit_entries())
    finally:
        await store.close()

    assert closed.status.value == "closed"
    assert entries == 2
    failures = [r for r in caplog.records if "audit anchor not written" in r.getMessage()]
    assert len(failures) == 2  # seq 2 on append, and the head on close


async def test_the_schedule_survives_a_failing_round(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []
    third_round = asyncio.Event()

    async def flaky() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise ConnectionError("database restarting")
        if len(rounds) == 3:
            third_round.set()

    with caplog.at_level(logging.ERROR, logger="orchestrator.store.anchors"):
        schedule = asyncio.create_task(anchor_periodically(flaky, 0.01))
        try:
            await asyncio.wait_for(third_round.wait(), 5)
        finally:
            schedule.cancel()

    assert "ConnectionError: database restarting" in caplog.text
    assert len(rounds) >= 3


async def test_a_seq_anchored_with_two_hashes_is_a_finding(sqlite_url: str, tmp_path: Path) -> None:
    anchor = AuditAnchor(tmp_path / "anchor" / "audit-anchor.jsonl")
    store = await _open(sqlite_url, anchor)
    try:
        for n in range(3):
            await store.append_audit(make_event(n))
        head = await store.anchor_now()
        assert head is not None
        with anchor.path.open("a", encoding="utf-8") as file:
            file.write(AnchorEntry(seq=3, hash="f" * 64, at=head.at).model_dump_json() + "\n")
        verification = await store.verify_audit(anchor)
    finally:
        await store.close()

    assert (verification.ok, verification.first_bad_seq) == (False, 3)
    assert verification.reason.startswith("anchor mismatch: seq 3")


async def test_file_anchor_errors_are_anchor_errors(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory should be")
    anchor = AuditAnchor(blocked / "audit-anchor.jsonl")
    head = AuditRecord(
        **make_event(1).model_dump(), seq=1, at=T0, prev_hash="0" * 64, hash="a" * 64
    )

    with pytest.raises(AnchorError, match="blocked is not a directory"):
        anchor.secure()
    with pytest.raises(AnchorError, match=r"audit anchor .*blocked/audit-anchor\.jsonl"):
        await anchor.write(head)
    assert blocked.read_text() == "a file where the directory should be"
