"""The v0 signature verifier on its own: only `SignatureRejected`, whatever the input."""

from __future__ import annotations

import pytest

from orchestrator.slack.signing import SignatureRejected, signature, verify

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
NOW = 1_795_000_000


def headers(timestamp: str, sig: str | None = None) -> dict[str, str]:
    return {
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": sig if sig is not None else signature(SECRET, timestamp, BODY),
    }


def test_slacks_documented_example_signature() -> None:
    # From Slack's "Verifying requests from Slack" guide.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
        b"-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
        b"00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d"
        b"10d2c447fce8b6703c"
    )
    assert signature(SECRET, "1531420618", body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


@pytest.mark.parametrize("skew", [0, 290, -290, 300, -300])
def test_accepted_within_the_five_minute_window(skew: int) -> None:
    verify(SECRET, headers(str(NOW + skew)), BODY, now=NOW)


@pytest.mark.parametrize(
    ("case", "given"),
    [
        ("stale", headers(str(NOW - 301))),
        ("future", headers(str(NOW + 310))),
        ("not a number", headers("abc")),
        ("5000 digits", headers("9" * 5000)),
        ("negative", headers("-5")),
        ("wrong digest", headers(str(NOW), "v0=" + "0" * 64)),
        ("not v0", headers(str(NOW), "v1=" + "0" * 64)),
        ("garbage signature", headers(str(NOW), "v0=zz")),
        ("non-ASCII signature", headers(str(NOW), "v0=é" * 20)),
        ("no signature", {"x-slack-request-timestamp": str(NOW)}),
        ("no timestamp", {"x-slack-signature": "v0=" + "0" * 64}),
        ("nothing", {}),
    ],
)
def test_everything_else_is_rejected_with_a_reason(case: str, given: dict[str, str]) -> None:
    with pytest.raises(SignatureRejected) as rejected:
        verify(SECRET, given, BODY, now=NOW)
    assert str(rejected.value), case


def test_a_signature_over_another_body_is_rejected() -> None:
    with pytest.raises(SignatureRejected, match="does not match"):
        verify(SECRET, headers(str(NOW)), BODY + b"&x=1", now=NOW)
