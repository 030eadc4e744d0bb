"""The redactor's credential patterns and known values: what is masked, and that the keyword fast path and the
lock-free reads mask exactly what running every pattern on every text masks."""

from __future__ import annotations

import random
import re
import threading

import pytest

from wizard.core import redact as redact_module
from wizard.core.redact import MASK, Redactor, may_hold_credential, redact_patterns


def _every_pattern(text: str) -> str:
    """The reference: every pattern substituted in order, no fast path."""
    for pattern in redact_module._PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.abc.def", f"Authorization: {MASK}"),
        ('{"Authorization": "Basic dXNlcjpwdw=="}', f'{{"Authorization": "{MASK}"}}'),
        ("X-Auth-Token: 0123abcd rest", f"X-Auth-Token: {MASK} rest"),
        ("vmware-api-session-id=abcdef", f"vmware-api-session-id={MASK}"),
        ('Cookie: vmware_soap_session="52a1"; Path=/', f'Cookie: vmware_soap_session="{MASK}"; Path=/'),
        ('{"newPassword": "hunter22", "user": "root"}', f'{{"newPassword": "{MASK}", "user": "root"}}'),
        ("{'api_key': 'k-123'}", f"{{'api_key': '{MASK}'}}"),
        ('{"client_secret": "s3"}', f'{{"client_secret": "{MASK}"}}'),
        ("user=root&password=hunter22&x=1", f"user=root&password={MASK}&x=1"),
        ("GET /?apikey=abc123 HTTP/1.1", f"GET /?apikey={MASK} HTTP/1.1"),
        ('OAuth oauth_signature="a%26b", oauth_nonce="n"', f'OAuth oauth_signature="{MASK}", oauth_nonce="n"'),
        # A shorter match that starts first must not leave the value of a later one behind.
        ("token=Authorization: xyz", f"token={MASK} {MASK}"),
        ("PASSWORD=Upper-Case-1", f"PASSWORD={MASK}"),
        # Nothing to mask: returned as is.
        ("1.2 MiB / 3.0 GiB", "1.2 MiB / 3.0 GiB"),
        ("Installing: stage 3 of 10", "Installing: stage 3 of 10"),
        ("the password was changed", "the password was changed"),
    ],
)
def test_patterns_mask_credentials_and_leave_other_text_alone(text: str, expected: str) -> None:
    assert redact_patterns(text) == expected == _every_pattern(text)


def test_each_pattern_needs_a_keyword_of_the_fast_path() -> None:
    """Every pattern's literal part contains a keyword; a pattern added without one would be skipped."""
    samples = {
        0: "authorization: x",
        1: "x-auth-token: x",
        2: "vmware_soap_session=x",
        3: '"password": "x"',
        4: "passwd=x",
        5: "oauth_signature=x",
    }
    assert set(samples) == set(range(len(redact_module._PATTERNS)))
    for index, sample in samples.items():
        assert redact_module._PATTERNS[index].search(sample), sample
        assert redact_module._KEYWORDS.search(sample), sample
        assert may_hold_credential(sample) and may_hold_credential(sample.upper()), sample
    # The keyword search is what lets plain text through untouched; it must not match it.
    assert not may_hold_credential("● Running  ·  elapsed 1m 20s  ·  512.0 MiB/s")
    assert not may_hold_credential("Uploading content.tar.zst: 512.0 MiB of 1.0 GiB")


_FRAGMENTS = [
    "Authorization",
    "authorization",
    "x-auth-token",
    "VMware-Api-Session-Id",
    "vmware_soap_session",
    "password",
    "Passwd",
    "newPassword",
    "api_key",
    "APIKEY",
    "Api_Key",
    "TOKEN",
    "SECRET",
    "Oauth_Signature",
    "client_secret",
    "token",
    "oauth_signature",
    "paſſword",  # re's IGNORECASE folds ſ to s: the fast path must agree with the patterns
    "to",
    "ken",
    "Bearer ",
    "basic ",
    ":",
    "=",
    " ",
    '"',
    "'",
    ",",
    "}",
    "{",
    "&",
    ";",
    "\n",
    "abc",
    "S3cr3t-value",
    "«",
    "é",
]


def test_the_fast_path_masks_exactly_what_every_pattern_masks() -> None:
    rng = random.Random(20261124)
    texts = ["".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(1, 12))) for _ in range(20_000)]
    differ = [t for t in texts if redact_patterns(t) != _every_pattern(t)]
    assert differ == []
    # The ASCII shortcut and the regular expression agree on every text.
    assert [t for t in texts if may_hold_credential(t) != (redact_module._KEYWORDS.search(t) is not None)] == []
    # The sample exercised every path: ASCII and not, with and without a keyword.
    paths = {(t.isascii(), may_hold_credential(t)) for t in texts}
    assert paths == {(True, True), (True, False), (False, True), (False, False)}
    assert sum(redact_patterns(t) != t for t in texts) > 500


def test_known_values_are_masked_longest_first_and_cleared() -> None:
    r = Redactor()
    r.add("abc")  # too short: ignored
    r.add(None)
    r.add("pass-1234")
    r.add("pass-1234-extended")
    r.add("pass-1234")  # twice: once
    assert r.redact("a pass-1234-extended b pass-1234 c abc") == f"a {MASK} b {MASK} c abc"
    assert r.contains_secret("x pass-1234 y") and not r.contains_secret("pass-123")
    assert r.redact("token=pass-1234") == f"token={MASK}"
    r.clear()
    assert r.redact("pass-1234") == "pass-1234" and not r.contains_secret("pass-1234")


def test_values_added_while_other_threads_redact_are_never_lost() -> None:
    r = Redactor()
    values = [f"secret-value-{i:04d}" for i in range(300)]
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            out = r.redact("a secret-value-0000 b")
            if not re.fullmatch(rf"a (secret-value-0000|{re.escape(MASK)}) b", out):
                errors.append(out)

    def writer(part: list[str]) -> None:
        for v in part:
            r.add(v)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(values[i::3],)) for i in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    text = " ".join(values)
    assert r.redact(text) == " ".join([MASK] * len(values))
