"""The OpenAPI schema tells the truth: a property-based test (schemathesis)
generates requests for every operation from the schema itself, valid and
invalid, sends them to the live test server as an expert and as an admin, and
checks every answer: never a 5xx, a status code the schema lists, the declared
content type, and a body that validates against the schema (paginated pages,
per-role serializers, the error object).

The number of examples is bounded (``FUZZ_EXAMPLES``, derandomised so a
failure reproduces)."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from annotation import services
from tests.factories import AdminFactory, ClipFactory, ExpertFactory, offer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_world(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_FAILURE_LIMIT = 1000  # the fuzzer may sign in wrongly often
    expert, admin = ExpertFactory(), AdminFactory()
    clips = ClipFactory.create_batch(6)
    offer(expert, clips[:3])
    services.vote_create(expert=expert, clip=clips[0], grade="B")
    services.vote_create(expert=ExpertFactory(), clip=clips[1], grade="D")
    return {
        "expert": Token.objects.create(user=expert).key,
        "admin": Token.objects.create(user=admin).key,
    }


@pytest.fixture
def api_schema(live_server, fuzz_world):
    return schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/?format=json",
        headers={"Authorization": f"Token {fuzz_world['admin']}"},
    )


def _fuzz(operation, mode, tokens) -> None:
    # schemathesis' own pytest plugin does not run on this pytest; the same
    # generation and checks, driven by hypothesis directly.
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        for role in ("expert", "admin"):
            case.call_and_validate(
                headers={"Authorization": f"Token {tokens[role]}"}, checks=CHECKS
            )

    run()


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_every_answer_matches_the_schema_for_experts_and_admins(
    api_schema, fuzz_world, mode
):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20  # every operation of the API, registry included
    failures = []
    for operation in operations:
        try:
            _fuzz(operation, mode, fuzz_world)
        except Unsatisfiable:
            # Negative mode only: nothing in this operation can be made invalid
            # (no parameters, or any string is a valid one).
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # noqa: BLE001 - gather every operation's failure
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
