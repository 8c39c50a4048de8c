"""Schemathesis: valid and invalid requests from the OpenAPI schema never get a 5xx.

Every operation of ``/openapi.json`` is exercised against the ASGI app (its lifespan runs, so
the tiny bundle is loaded and predictions really run) with positive and negative examples;
4xx answers must carry a ``detail`` message. Once without API keys, once with them: then every
request sends a valid ``Authorization: Bearer`` key unless the negative examples change it (they
drop or garble the header the security scheme declares); a protected route answers 401 exactly
when the key sent is not the valid one, an open route never.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tweetcls.serving.app import create_app
from tweetcls.serving.settings import ServeSettings

#: The API key of the keyed runs.
KEY = "fuzz-key-0123456789abcdef"
#: The routes that need it.
PROTECTED = {"/predict", "/predict/csv", "/drift", "/metrics"}


@pytest.fixture(params=[False, True], ids=["no keys", "with a key"])
def keyed(request: pytest.FixtureRequest) -> bool:
    """Whether the app has an API key (and the requests send it)."""
    return request.param


@pytest.fixture
def api_schema(tiny_bundle: Path, tmp_path: Path, keyed: bool):
    """The app's own OpenAPI schema, bound to the app (requests go through ASGI)."""
    app = create_app(
        ServeSettings(
            model=tiny_bundle,
            database_url=f"sqlite:///{tmp_path / 'requests.db'}",
            drift_interval_s=0,
            drift_min_samples=5,
            max_items=8,
            max_chars=280,
            max_csv_rows=20,
            threads=1,
            api_keys=[KEY] if keyed else [],
        )
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(api_schema, keyed: bool, mode: GenerationMode) -> None:
    # Hypothesis over the schema's own strategy: schemathesis' lazy pytest loader
    # (``from_fixture``) reads ``request.node._nodeid``, which pytest 9 removed.
    seen: set[str] = set()
    headers = {"Authorization": f"Bearer {KEY}"} if keyed else None

    @given(case=api_schema.as_strategy(mode))
    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case) -> None:
        seen.add(case.operation.label)
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        if keyed and case.operation.path in PROTECTED:
            sent = response.request.headers.get("Authorization")
            assert (response.status_code == 401) == (sent != f"Bearer {KEY}"), (sent, response.text)
        else:
            assert response.status_code != 401, response.text
        if response.status_code >= 400 and case.operation.path != "/metrics":
            detail = response.json().get("detail")
            assert isinstance(detail, str), response.text
            assert detail

    check()
    if mode is GenerationMode.POSITIVE:  # every operation was called
        operations = {result.ok().label for result in api_schema.get_all_operations()}
        assert seen == operations
