"""The one credential masker: a table of tricky URIs, free text, the log filter, and a
property test that no generated password or query secret survives masking."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.secrets import SECRET_KEYS, RedactingFilter, is_secret_key, mask_url, redact

SCHEMES = ("rtsp", "rtsps", "rtmp", "srt", "http", "https", "redis", "rediss")


@pytest.mark.parametrize(
    "uri, masked",
    [
        # the bug this module replaced: the tail of the password and the token leaked
        ("redis://detector:p@ss@host:6379/0?token=abc", "redis://detector:***@host:6379/0?token=***"),
        ("rtsp://admin:pw@cam1:554/s1?token=abc&ch=2", "rtsp://admin:***@cam1:554/s1?token=***&ch=2"),
        # '@' and ':' inside the password: split at the last '@', the first ':'
        ("rtsp://admin:a:b@c:d@cam/1", "rtsp://admin:***@cam/1"),
        ("rtsp://admin:@@@cam/1", "rtsp://admin:***@cam/1"),
        ("https://u:p@ss@host/x?q=1@2", "https://u:***@host/x?q=1@2"),  # an '@' after the host is not userinfo
        # percent-encoded password: masked as written, never decoded
        ("rtsp://admin:p%40ss%3Aw%2Fd@cam/1", "rtsp://admin:***@cam/1"),
        ("rtsp://us%40er:pw@cam/1", "rtsp://us%40er:***@cam/1"),
        # user without password: nothing secret; password without user: masked
        ("rtsp://admin@cam/1", "rtsp://admin@cam/1"),
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("rtsp://cam:554/s1", "rtsp://cam:554/s1"),
        ("http://[::1]:8080/live", "http://[::1]:8080/live"),
        ("http://u:pw@[::1]:8080/live", "http://u:***@[::1]:8080/live"),
        # every secret query key, any case, as a suffix; other keys and the order kept
        *[(f"https://h/v?{key}=v4lue&n=1", f"https://h/v?{key}=***&n=1") for key in SECRET_KEYS],
        ("https://h/v?TOKEN=a&Password=b&PassWD=c", "https://h/v?TOKEN=***&Password=***&PassWD=***"),
        ("https://h/v?access_token=a&api_key=b&X-Amz-Signature=c", "https://h/v?access_token=***&api_key=***&X-Amz-Signature=***"),
        ("https://h/v?client_secret=a&authsig=b", "https://h/v?client_secret=***&authsig=***"),
        ("https://h/v?keyframe=1&password_env=PW&tokens=3", "https://h/v?keyframe=1&password_env=PW&tokens=3"),
        ("https://h/v?token=&x=1", "https://h/v?token=&x=1"),  # nothing to hide
        ("https://h/v?token=a%26b%3D&x=%20y", "https://h/v?token=***&x=%20y"),  # the rest is not re-encoded
        ("https://h/cb#access_token=abc&state=1", "https://h/cb#access_token=***&state=1"),
        # every scheme we accept
        *[(f"{s}://user:pw@host:1/p?sig=xyz", f"{s}://user:***@host:1/p?sig=***") for s in SCHEMES],
        ("RTSP://user:pw@host/p", "RTSP://user:***@host/p"),
        # plain paths are not URLs, whatever they hold
        ("/videos/a.mp4", "/videos/a.mp4"),
        ("videos/a:b@c.mp4", "videos/a:b@c.mp4"),
        ("/data/x?token=1.mp4", "/data/x?token=1.mp4"),
        ("/dev/video0", "/dev/video0"),
    ],
)
def test_mask_url(uri, masked):
    assert mask_url(uri) == masked
    assert mask_url(masked) == masked  # idempotent
    assert redact(uri) == masked  # a URL on its own is free text too


@pytest.mark.parametrize(
    "text, masked",
    [
        (
            "Connection refused: 'rtsp://admin:p@ss@10.0.0.1/x?auth_key=zz' and http://u:v@h/live",
            "Connection refused: 'rtsp://admin:***@10.0.0.1/x?auth_key=***' and http://u:***@h/live",
        ),
        (  # a value runs to the white space: its trailing '.' is masked with it (more, not less)
            "Error 111 connecting to redis://:pw@redis:6379/0?token=abc. Connection refused.",
            "Error 111 connecting to redis://:***@redis:6379/0?token=*** Connection refused.",
        ),
        (
            "sink 'rediss://det:a:b@c@host:6380/1?stream=s&api_key=K\"x' is not one of ...",
            "sink 'rediss://det:***@host:6380/1?stream=s&api_key=***\"x' is not one of ...",
        ),
        ("<http://host/p?sig=abc>", "<http://host/p?sig=***>"),
        ("two: srt://a:1@h1 rtmp://b:2@h2/app?Token=t", "two: srt://a:***@h1 rtmp://b:***@h2/app?Token=***"),
        ("no url here: key = value, a@b.c", "no url here: key = value, a@b.c"),
        ("file not found: /data/cam:1@x.mp4", "file not found: /data/cam:1@x.mp4"),
    ],
)
def test_redact_masks_every_url_in_free_text(text, masked):
    assert redact(text) == masked
    assert redact(masked) == masked  # no punctuation eaten on a second pass


def test_is_secret_key():
    assert all(is_secret_key(k) for k in ("token", "Access_Token", "API_KEY", "x-amz-signature", "pwd"))
    assert not any(is_secret_key(k) for k in ("stream", "password_env", "ssl_keyfile", "tokens", "ch"))


def test_log_filter_masks_messages_and_arguments(caplog):
    logger = logging.getLogger("detstream.test_secrets")
    handler_filter = RedactingFilter()
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="detstream.test_secrets"):
            logger.info("opening %s", "rtsp://admin:hunter2@cam/1?token=t0k3n")
            logger.info("plain %d", 3)
    finally:
        logger.removeFilter(handler_filter)
    assert [r.getMessage() for r in caplog.records] == ["opening rtsp://admin:***@cam/1?token=***", "plain 3"]


# -- property: no generated secret ever survives
#
# Everything that is not a secret is built from lower-case letters, digits and '._-'
# (schemes, users, hosts, paths, other parameters), the URL's own ':/?&=@[]', secret keys
# (whose upper-case forms use the letters ACDEGHIKLMNOPRSTUWXYZ) and the mask '*'. Every
# generated secret holds at least one MARK, a character none of those can contain, so a
# secret found in the output is a leak, never a coincidence: even a one-character password.
MARKS = "!~$BFJQV"
plain = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
name = st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=10)
# raw '@' and ':' stay raw in a password (they are the tricky ones); the rest is percent-encoded
password_chars = MARKS + "@:*+,;=abc019 /?#&'\"%é"
value_chars = MARKS + "@:*+,;abc019 /?#&=%'\"é"


def marked(alphabet: str, marks: str) -> st.SearchStrategy[str]:
    return st.tuples(st.text(alphabet, max_size=12), st.sampled_from(marks), st.text(alphabet, max_size=12)).map("".join)


# the brief's list, written out again: the property must not trust the module's own list
KEYS = ("token", "password", "passwd", "pass", "key", "secret", "sig", "signature", "auth")
secret_key = st.tuples(st.sampled_from(["", "access_", "api_", "x-amz-", "client_"]), st.sampled_from(KEYS)).map(
    "".join
).flatmap(lambda key: st.sampled_from([key, key.upper(), key.capitalize()]))

# any other key (`keyframe`, `tokens`, `ch`): kept, with its value ('pwd' is masked too)
other_key = plain.filter(lambda key: not key.endswith((*KEYS, "pwd")))


@st.composite
def urls(draw) -> tuple[str, str, list[str]]:
    """A URL, the URL as it must be masked, and the secrets in it (raw and as written)."""
    scheme = draw(st.sampled_from(SCHEMES))
    user = draw(st.one_of(st.just(""), name))
    password = draw(marked(password_chars, MARKS))
    written = quote(password, safe="@:!$*+,;=~")
    host = draw(st.one_of(name, st.just("[::1]")))
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    path = draw(st.lists(name, max_size=3).map(lambda parts: "".join("/" + p for p in parts)))
    secrets = [password, written]
    params, masked = [], []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            key, value = draw(secret_key), draw(marked(value_chars, MARKS))
            encoded = quote(value, safe="@:!$*+,;~")
            secrets += [value, encoded]
            params.append(f"{key}={encoded}")
            masked.append(f"{key}=***")
        else:
            params.append(f"{draw(other_key)}={draw(plain)}")
            masked.append(params[-1])
    query = "?" + "&".join(params) if params else ""
    masked_query = "?" + "&".join(masked) if masked else ""
    url = f"{scheme}://{user}:{written}@{host}{port}{path}"
    return url + query, f"{scheme}://{user}:***@{host}{port}{path}{masked_query}", secrets


@settings(max_examples=300, deadline=None)
@given(urls(), st.sampled_from(["{}", "cannot open '{}': refused", 'x "{}" y', "<{}>", "a {} b {} c"]))
def test_no_generated_secret_survives_masking(generated, sentence):
    url, expected, secrets = generated
    outputs = [mask_url(url), redact(url), redact(sentence.format(url, url))]
    for output in outputs:
        for secret in secrets:
            assert secret not in output, (url, output)
        # no part of a secret either (a password cut at the wrong '@' leaves its tail)
        assert not set(MARKS + "%") & set(output), (url, output)
    # and nothing but the secrets changed
    assert outputs == [expected, expected, sentence.format(expected, expected)]
    assert mask_url(expected) == expected
