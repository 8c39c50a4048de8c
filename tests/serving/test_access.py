"""Access control of the service: API keys, rate limits, CORS and security headers.

The protected routes (``/predict``, ``/explain``, ``/predict/csv``, ``/feedback``, ``/drift``,
``/metrics``) with and without a valid key, against the tiny bundle; the open ones without a
key; key settings and key-file errors through the real CLI; the warning for an open service on
a public address; the rate limit on a fake clock, and held in total by two server processes on
one real Redis; CORS preflights; the headers on the page and its files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers.redis import redis_url  # noqa: F401  (fixture)
from helpers.servers import free_port, running_server, settings_for
from limits.aio.storage import memory as limits_memory

from tweetcls.cli import main
from tweetcls.core.errors import ConfigError
from tweetcls.monitoring.settings import parse_command_line
from tweetcls.serving import ratelimit
from tweetcls.serving.app import create_app
from tweetcls.serving.auth import UNAUTHORIZED, ApiKeys, is_loopback
from tweetcls.serving.headers import DOCS_CSP, DRIFT_CSP, STRICT_CSP
from tweetcls.serving.routes.web import STATIC_DIR
from tweetcls.serving.settings import ServeSettings

KEY = "test-key-0123456789abcdef"
OTHER_KEY = "second.key_0123456789~ABC"
TWEET = {"text": "Forest fire near La Ronge Sask. Canada", "keyword": "wildfire"}
CSV = ("tweets.csv", b"text\nForest fire near La Ronge\nI love fruits\n", "text/csv")
#: A correction of a prediction that was never logged: with a key, the route's own 404.
FEEDBACK = {"prediction_id": "00000000-0000-4000-8000-000000000000", "label": 1}
#: (method, path, request keywords) of each protected route.
PROTECTED = [
    ("POST", "/predict", {"json": TWEET}),
    ("POST", "/explain", {"json": TWEET}),
    ("POST", "/predict/csv", {"files": {"file": CSV}}),
    ("POST", "/feedback", {"json": FEEDBACK}),
    ("GET", "/drift", {}),
    ("GET", "/metrics", {}),
]
OPEN = ["/health", "/ready", "/version", "/", "/static/app.js", "/openapi.json", "/docs"]
#: Authorization headers that are not a valid key; each gets the same 401.
REFUSED = {
    "missing": None,
    "empty": "",
    "basic scheme": f"Basic {KEY}",
    "no scheme": KEY,
    "bearer without token": "Bearer",
    "wrong key": "Bearer wrong-key-0123456789abcdef",
    "key prefix": f"Bearer {KEY[:-1]}",
    "key with suffix": f"Bearer {KEY}x",
    "two keys": f"Bearer {KEY},{OTHER_KEY}",
}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the TWEETCLS_* variables they need; none leaks in from the caller's shell."""
    for name in [n for n in os.environ if n.upper().startswith("TWEETCLS_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def keyed(tiny_bundle: Path, tmp_path_factory) -> Iterator[TestClient]:
    """A running app (model loaded) with two API keys."""
    database = tmp_path_factory.mktemp("access") / "requests.db"
    app = create_app(settings_for(tiny_bundle, database, api_keys=[KEY, OTHER_KEY]))
    with TestClient(app) as client:
        yield client


def unloaded(tmp_path: Path, **changes) -> TestClient:
    """An app whose model is never loaded (no lifespan): enough for the checks before it."""
    return TestClient(create_app(settings_for(tmp_path, tmp_path / "requests.db", **changes)))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- API keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "kwargs"), PROTECTED)
def test_protected_routes_answer_a_valid_key(keyed: TestClient, method, path, kwargs) -> None:
    # the tiny bundle's attributions may fail export's faithfulness check: /explain is then 404
    # /feedback of an id never logged: 404 from the route itself, past the key check
    answered = {"/explain": {200, 404}, "/feedback": {404}}.get(path, {200})
    for key in (KEY, OTHER_KEY):
        answer = keyed.request(method, path, headers=bearer(key), **kwargs)
        assert answer.status_code in answered, (path, answer.text)
        assert path != "/feedback" or "no logged prediction" in answer.json()["detail"]
    lower = keyed.request(method, path, headers={"Authorization": f"bearer {KEY}"}, **kwargs)
    assert lower.status_code in answered, lower.text  # the scheme is case-insensitive (RFC 7235)


@pytest.mark.parametrize(("method", "path", "kwargs"), PROTECTED)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_protected_routes_refuse_everything_else_alike(
    keyed: TestClient, method, path, kwargs, case: str
) -> None:
    value = REFUSED[case]
    headers = None if value is None else {"Authorization": value}
    answer = keyed.request(method, path, headers=headers, **kwargs)
    assert answer.status_code == 401, answer.text
    assert answer.json() == {"detail": UNAUTHORIZED}  # the same for every cause
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.headers["content-type"] == "application/json"
    assert KEY not in answer.text and "wrong" not in answer.text


@pytest.mark.parametrize("path", OPEN)
def test_open_routes_need_no_key(keyed: TestClient, path: str) -> None:
    answer = keyed.get(path)
    assert answer.status_code == 200, (path, answer.text)
    assert "www-authenticate" not in answer.headers
    assert KEY not in answer.text and OTHER_KEY not in answer.text  # /version: no settings


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        (
            "POST",
            "/predict",
            {"content": b"{not", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("POST", "/predict", {"json": {"text": "x" * 5000}}, 422),
        ("POST", "/predict", {"content": b"x" * 600_000}, 413),
        ("POST", "/predict/csv", {"content": b"x", "headers": {"Content-Type": "text/csv"}}, 422),
        ("GET", "/predict", {}, 405),
        ("GET", "/drift", {"params": {"since": "yesterday"}}, 422),
        ("POST", "/feedback", {"json": {"prediction_id": "x", "label": 2}}, 422),
    ],
    ids=[
        "bad JSON",
        "long text",
        "large body",
        "not multipart",
        "wrong method",
        "bad query",
        "bad feedback",
    ],
)
def test_the_key_is_checked_before_the_body_is_read(
    keyed: TestClient, method, path, kwargs, status: int
) -> None:
    kwargs = dict(kwargs)
    headers = kwargs.pop("headers", {})
    refused = keyed.request(method, path, headers=headers, **kwargs)
    assert refused.status_code == 401, refused.text  # nothing about the body to a stranger
    assert refused.json() == {"detail": UNAUTHORIZED}
    answered = keyed.request(method, path, headers={**headers, **bearer(KEY)}, **kwargs)
    assert answered.status_code == status, answered.text


def test_refusals_are_counted_under_their_route(keyed: TestClient) -> None:
    keyed.post("/predict", json=TWEET)
    keyed.get("/drift", headers=bearer("x" * 20))
    text = keyed.get("/metrics", headers=bearer(KEY)).text
    assert 'route="/predict",status="401"' in text
    assert 'route="/drift",status="401"' in text


@pytest.mark.parametrize("how", ["under a root path", "with a trailing slash", "HEAD"])
def test_the_one_gate_sees_every_way_to_a_protected_route(tmp_path: Path, how: str) -> None:
    """The middleware is the only check: a root path, a trailing slash (redirected, then
    checked) or another method reach no protected route without a key."""
    app = create_app(settings_for(tmp_path, tmp_path / "r.db", api_keys=[KEY]))
    client = TestClient(app, root_path="/api" if how == "under a root path" else "")
    path = {"under a root path": "/api/metrics", "with a trailing slash": "/metrics/"}.get(
        how, "/metrics"
    )
    method = "HEAD" if how == "HEAD" else "GET"
    refused = client.request(method, path)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert client.request(method, path, headers=bearer(KEY)).status_code in (200, 405)


def test_the_gate_refuses_routes_with_path_parameters() -> None:
    from tweetcls.serving.auth import AccessControl, Gate

    with pytest.raises(ValueError, match=r"fixed paths: /predict/\{name\}"):
        AccessControl(None, Gate(None, None), {"/predict/{name}": object(), "/metrics": object()})


def test_the_spec_declares_the_bearer_scheme_on_the_protected_routes(keyed: TestClient) -> None:
    spec = keyed.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of `tweetcls serve --api_keys` or `--api_key_file`.",
    }
    for method, path, _ in PROTECTED:
        operation = spec["paths"][path][method.lower()]
        assert operation["security"] == [{"apiKey": []}], path
        assert "401" in operation["responses"] and "429" not in operation["responses"]
    for path in ("/health", "/ready", "/version"):
        assert "security" not in spec["paths"][path]["get"], path


def test_without_keys_nothing_is_protected_or_declared(tmp_path: Path) -> None:
    client = unloaded(tmp_path)
    assert client.get("/metrics").status_code == 200
    assert client.post("/predict", json=TWEET).status_code == 503  # not loaded, not 401
    spec = client.get("/openapi.json").json()
    assert "securitySchemes" not in spec.get("components", {})
    assert all("security" not in op for ops in spec["paths"].values() for op in ops.values())


def test_keys_are_compared_by_digest_with_every_key() -> None:
    keys = ApiKeys([KEY, OTHER_KEY])
    assert (keys.match(KEY), keys.match(OTHER_KEY), keys.match("x" * 30)) == (0, 1, None)
    assert keys.match("") is None and keys.match("ключ") is None
    assert KEY not in repr(keys) and repr(keys) == "ApiKeys(2 keys)"
    with pytest.raises(ValueError):
        ApiKeys([])


# --- key settings --------------------------------------------------------------------------


def parse(*args: str) -> ServeSettings:
    return parse_command_line(ServeSettings, ["--model", ".", *args], "tweetcls serve")


def test_keys_from_the_variable_flags_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWEETCLS_API_KEYS", f"{KEY}, {OTHER_KEY}")
    assert parse().access_keys() == (KEY, OTHER_KEY)
    monkeypatch.setenv("TWEETCLS_API_KEYS", "")
    assert parse().access_keys() == ()  # empty: off
    monkeypatch.delenv("TWEETCLS_API_KEYS")
    assert parse("--api_keys", KEY, "--api_keys", OTHER_KEY).access_keys() == (KEY, OTHER_KEY)
    assert parse("--api_keys", f"{KEY},{OTHER_KEY}").access_keys() == (KEY, OTHER_KEY)

    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# service keys\n{OTHER_KEY}  # the batch job\n\n{KEY}\n")
    from_file = parse("--api_key_file", str(key_file), "--api_keys", KEY)
    assert from_file.access_keys() == (KEY, OTHER_KEY)  # flags first, each key once

    monkeypatch.setenv("TWEETCLS_API_KEYS", KEY)
    client = TestClient(create_app(parse("--database_url", f"sqlite:///{tmp_path / 'r.db'}")))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(KEY)).status_code == 200


def test_keys_are_never_shown(tmp_path: Path, capsys, caplog) -> None:
    settings = parse("--api_keys", f"{KEY},{OTHER_KEY}")
    caplog.set_level(logging.DEBUG)
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump(mode="json")),
    ]
    with pytest.raises(ConfigError) as short:
        parse("--api_keys", f"{KEY},sh0rtK3y")
    shown.append(str(short.value))
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown.append(capsys.readouterr().out)
    client = unloaded(tmp_path, api_keys=[KEY])
    client.get("/metrics", headers=bearer(KEY))
    client.get("/metrics", headers=bearer(KEY + "x"))
    shown.append(caplog.text)
    for text in shown:
        assert KEY not in text and OTHER_KEY not in text and "sh0rtK3y" not in text, text
    assert str(short.value) == "--api_keys: key 2 of 2: shorter than 16 characters"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("", "no keys in it (one per line; '#' starts a comment)"),
        ("# only a comment\n\n   \n", "no keys in it"),
        (f"{KEY}\nshort\n", "line 2: shorter than 16 characters"),
        (f"{KEY} {OTHER_KEY}\n", "line 1: has characters other than A-Z a-z 0-9"),
        (b"\xff\xfe key\n", "not UTF-8 text"),
    ],
    ids=["missing", "empty", "comments only", "short key", "two on a line", "not UTF-8"],
)
def test_key_file_errors_are_one_line_exit_2(tmp_path: Path, capsys, content, message: str) -> None:
    key_file = tmp_path / "keys.txt"
    if isinstance(content, bytes):
        key_file.write_bytes(content)
    elif content is not None:
        key_file.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model", str(tmp_path), "--api_key_file", str(key_file)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: --api_key_file '{key_file}': {message}"), lines[0]
    assert captured.out == "" and KEY not in captured.err


def test_key_file_that_cannot_be_read_is_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model", str(tmp_path), "--api_key_file", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --api_key_file '{tmp_path}': cannot be read"), err
    assert err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cors_origins", "https://a.example/"], "'https://a.example/' is not an origin"),
        (["--cors_origins", "a.example"], "--cors_origins: 'a.example' is not an origin"),
    ],
)
def test_bad_access_settings_are_one_line(tmp_path: Path, capsys, args, message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model", str(tmp_path), *args])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and message in lines[0], lines


# --- the warning for an open service ---------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "keys", "warned"),
    [
        ("0.0.0.0", [], True),
        ("::", [], True),
        ("192.168.1.20", [], True),
        ("tweetcls.example.org", [], True),
        ("0.0.0.0", [KEY], False),
        ("127.0.0.1", [], False),
        ("127.0.0.2", [], False),
        ("::1", [], False),
        ("localhost", [], False),
    ],
)
def test_a_public_address_without_keys_is_warned_about(
    tmp_path: Path, caplog, host: str, keys: list[str], warned: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="tweetcls")
    unloaded(tmp_path, host=host, api_keys=keys)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned, caplog.text
    if warned:
        assert f"serving on {host} without API keys" in warnings[0].getMessage()
        assert "--api_keys" in warnings[0].getMessage()
    assert is_loopback(host) == (host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))


# --- rate limits -----------------------------------------------------------------------------


class FakeClock:
    """``time.time`` of the in-memory ``limits`` store and of the limiter, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(limits_memory, "time", fake)
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


def test_rate_limit_per_key_429_with_retry_after_then_recovery(
    tmp_path: Path, clock: FakeClock
) -> None:
    client = unloaded(tmp_path, api_keys=[KEY, OTHER_KEY], rate_limit="2/second")
    assert [client.get("/metrics", headers=bearer(KEY)).status_code for _ in "ab"] == [200] * 2
    refused = client.get("/metrics", headers=bearer(KEY))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["detail"] == "rate limit: 2/second per API key; retry in 1 s"
    assert "x-content-type-options" in refused.headers
    assert client.get("/metrics", headers=bearer(OTHER_KEY)).status_code == 200  # its own
    for _ in range(3):  # wrong keys are refused before the limit: they are not counted
        assert client.get("/metrics", headers=bearer("x" * 20)).status_code == 401
    assert client.get("/health").status_code == 200  # open routes are not limited

    clock.now += 0.5  # the window still holds both requests
    assert client.get("/metrics", headers=bearer(KEY)).status_code == 429
    clock.now += 0.6  # both left the window
    assert [client.get("/metrics", headers=bearer(KEY)).status_code for _ in "abc"] == [
        200,
        200,
        429,
    ]
    spec = client.get("/openapi.json").json()
    assert "429" in spec["paths"]["/predict"]["post"]["responses"]


def test_rate_limit_per_client_ip_without_keys_and_several_limits(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = settings_for(tmp_path, tmp_path / "r.db", rate_limit="3/second;4 per 10 seconds")
    app = create_app(settings)
    first = TestClient(app, client=("10.0.0.1", 5000))
    second = TestClient(app, client=("10.0.0.2", 5000))
    assert [first.get("/metrics").status_code for _ in "abcd"] == [200, 200, 200, 429]
    assert first.get("/metrics").headers["retry-after"] == "1"  # the per-second limit
    assert "per client" in first.get("/metrics").json()["detail"]
    assert second.get("/metrics").status_code == 200  # another client
    clock.now += 1.5
    assert first.get("/metrics").status_code == 200  # the 4th of 10 seconds
    refused = first.get("/metrics")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "9"  # until the first request leaves
    spec = first.get("/openapi.json").json()
    assert "security" not in spec["paths"]["/metrics"]["get"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate_limit", "fast"], "--rate_limit 'fast': not a rate limit: write N/second"),
        (["--rate_limit", "0/second"], "--rate_limit '0/second': not a rate limit"),
        (
            ["--rate_limit", "1/second", "--rate_limit_storage", "ftp://user:pw@host"],
            "--rate_limit_storage: scheme 'ftp': unknown (use memory:// or redis://HOST:PORT)",
        ),
        (
            ["--rate_limit_storage", "redis://127.0.0.1:6379"],
            "--rate_limit_storage: needs --rate_limit",
        ),
    ],
)
def test_bad_rate_limit_settings_are_one_line(tmp_path: Path, capsys, args, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model", str(tmp_path), *args])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "pw@" not in lines[0]


def test_an_unreachable_store_lets_requests_pass_with_one_warning(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="tweetcls")
    port = free_port()  # nothing listens there
    storage = f"redis://127.0.0.1:{port}/0"
    client = unloaded(tmp_path, rate_limit="1/minute", rate_limit_storage=storage)
    assert [client.get("/metrics").status_code for _ in "abc"] == [200] * 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["rate limit store unreachable (ConnectionError): requests pass uncounted"]


def test_two_processes_on_one_redis_hold_the_limit_in_total(
    tiny_bundle: Path,
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    flags = {"model": tiny_bundle, "threads": 1, "api_keys": [KEY]}
    flags |= {"rate_limit": "10/minute", "rate_limit_storage": redis_url}
    with (
        running_server(
            tmp_path / "a.log", database_url=f"sqlite:///{tmp_path / 'a.db'}", **flags
        ) as first,
        running_server(
            tmp_path / "b.log", database_url=f"sqlite:///{tmp_path / 'b.db'}", **flags
        ) as second,
    ):
        answers = [
            httpx.get(f"{server.url}/metrics", headers=bearer(KEY), timeout=30).status_code
            for _ in range(8)
            for server in (first, second)
        ]
    assert answers.count(200) == 10, answers  # 16 requests, 8 to each: 10 in total let in
    assert answers.count(429) == 6, answers
    assert "Traceback" not in first.output() + second.output()


# --- CORS ------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": "https://app.example.org",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


@pytest.mark.parametrize(("keys", "status"), [([], 405), ([KEY], 401)])
def test_cors_is_off_by_default(tmp_path: Path, keys: list[str], status: int) -> None:
    client = unloaded(tmp_path, api_keys=keys)
    preflight = client.options("/predict", headers=PREFLIGHT)
    assert preflight.status_code == status  # no route for OPTIONS; with keys, the key first
    assert "access-control-allow-origin" not in preflight.headers
    simple = client.get("/health", headers={"Origin": "https://app.example.org"})
    assert "access-control-allow-origin" not in simple.headers


def test_cors_for_the_configured_origins(tmp_path: Path) -> None:
    client = unloaded(tmp_path, api_keys=[KEY], cors_origins=["https://app.example.org"])
    preflight = client.options("/predict", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.org"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["x-frame-options"] == "DENY"

    refused = client.get("/metrics", headers={"Origin": "https://app.example.org"})
    assert refused.status_code == 401  # the page can read why
    assert refused.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "retry-after" in refused.headers["access-control-expose-headers"].lower()

    other = client.options("/predict", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


# --- security headers ------------------------------------------------------------------------


class _InlineCode(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag} {name}=" for name in names if name == "style" or name[:2] == "on"]
        if tag == "a" and any(v and v.lower().startswith("javascript:") for _, v in attrs):
            self.found.append("javascript: link")


def test_the_page_has_no_inline_code() -> None:
    parser = _InlineCode()
    parser.feed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    assert parser.found == []


@pytest.mark.parametrize(
    ("path", "csp"),
    [
        ("/", STRICT_CSP),
        ("/static/app.js", STRICT_CSP),
        ("/static/style.css", STRICT_CSP),
        ("/health", STRICT_CSP),
        ("/metrics", STRICT_CSP),
        ("/openapi.json", STRICT_CSP),
        ("/static/missing.js", STRICT_CSP),
        ("/docs", DOCS_CSP),
        ("/docs/oauth2-redirect", DOCS_CSP),
        ("/redoc", DOCS_CSP),
        ("/drift", DRIFT_CSP),
    ],
)
def test_security_headers_on_every_answer(tmp_path: Path, path: str, csp: str) -> None:
    answer = unloaded(tmp_path, api_keys=[KEY]).get(path)
    assert answer.headers["content-security-policy"] == csp, path
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value, (path, name)


def test_security_headers_on_a_body_refused_before_the_app(tmp_path: Path) -> None:
    client = unloaded(tmp_path, max_items=1, max_chars=10, max_queue=1)
    big = client.post("/predict", json={"text": "x" * 99999})
    assert big.status_code == 413, big.text  # answered by the body-limit middleware
    assert big.headers["content-security-policy"] == STRICT_CSP
    assert big.headers["x-content-type-options"] == "nosniff"


def test_the_strict_policy_is_as_specified() -> None:
    directives = dict(part.strip().split(" ", 1) for part in STRICT_CSP.split(";"))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "object-src": "'none'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
    }
    assert "unsafe-inline" not in STRICT_CSP and "script-src" not in DRIFT_CSP
