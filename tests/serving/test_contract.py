"""The API's contract: schemathesis runs every check on every route of ``/openapi.json``.

The app runs in-process (ASGI, its lifespan loads the tiny bundle, so predictions really run).
For every operation the schema lists (a route added later is covered without touching this
file), positive and negative examples go through every check schemathesis has:
``not_a_server_error``, status code, content type, response schema and headers conformance,
negative-data rejection, positive-data acceptance, ignored auth and the rest (the per-route
settings in ``schemathesis.toml`` at the project root apply, as for ``schemathesis run``).
Once without API keys, once with one: then every request sends the key unless the negative
examples drop or garble the header the security scheme declares, and a protected route must
answer 401 exactly when the key sent is not the valid one, an open route never (which is which:
the spec's ``security`` of each operation). Every 4xx
carries a ``detail`` message.

Hypothesis drives schemathesis' own strategies (``as_strategy``): its pytest loader
(``schemathesis.pytest.from_fixture``) reads ``request.node._nodeid``, which pytest 9 removed.
The examples are bounded and seeded (the same requests every run, ~30 s for both runs);
``TWEETCLS_CONTRACT_EXAMPLES`` raises the number per operation and mode (the scheduled
workflow runs thousands).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from helpers.paths import ROOT
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from tweetcls.serving.app import create_app
from tweetcls.serving.settings import ServeSettings

#: The API key of the keyed run.
KEY = "fuzz-key-0123456789abcdef"
#: Examples per operation and generation mode.
EXAMPLES = int(os.environ.get("TWEETCLS_CONTRACT_EXAMPLES", "40"))
#: The seed of every run.
SEED = 20261203


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
    config = SchemathesisConfig.from_path(ROOT / "schemathesis.toml")
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def _failures(operation, mode: GenerationMode, keyed: bool) -> list[str]:
    """What went wrong on ``operation``'s examples of ``mode`` (empty: nothing)."""
    headers = {"Authorization": f"Bearer {KEY}"} if keyed else None
    protected = bool(operation.definition.raw.get("security"))  # the schema declares the key

    @seed(SEED)
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case) -> None:
        response = case.call_and_validate(headers=headers)  # every check of schemathesis
        if keyed and protected:
            sent = response.request.headers.get("Authorization")
            assert (response.status_code == 401) == (sent != f"Bearer {KEY}"), (sent, response.text)
        else:
            assert response.status_code != 401, response.text
        if response.status_code >= 400 and case.operation.path != "/metrics":
            detail = response.json().get("detail")
            assert isinstance(detail, str) and detail, response.text

    try:
        check()
    except Unsatisfiable:  # no parameters to make invalid: nothing to send in negative mode
        assert mode is GenerationMode.NEGATIVE, operation.label
    except BaseException as err:  # schemathesis' FailureGroup is a BaseExceptionGroup
        if isinstance(err, KeyboardInterrupt):
            raise
        return [f"{operation.label} ({mode.value}): {err}"]
    return []


def test_every_route_keeps_the_contract(api_schema, keyed: bool) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {"POST /predict", "POST /predict/csv", "GET /drift"} <= {o.label for o in operations}
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for failure in _failures(operation, mode, keyed)
    ]
    assert not failures, "\n\n".join(failures)
