"""Bounded API fuzzing with schemathesis: every operation of the OpenAPI, in positive and negative
generation modes, against the ASGI app of a hub on a throw-away SQLite database with the in-process
broker, authenticated as the owner organisation of each kind (so generated ids sometimes are the real
objects it owns, and the code behind the object check runs too) and anonymously.

No case may answer 5xx (``not_a_server_error``); every answer's status code and content type must be
documented in the OpenAPI (``status_code_conformance``, ``content_type_conformance``). Each caller runs
under its own fixed seed, so CI is reproducible; ``G2BHUB_FUZZ_EXAMPLES`` raises the examples per
operation and mode for a longer run (``make fuzz``) and ``G2BHUB_FUZZ_SEED`` moves the seeds elsewhere.
The number of cases is printed in the summary."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from connectors.sandbox.server import SandboxServer
from hub.organisations.model import OrgKind
from tests.security.conftest import TALLY, World, seeded_world
from tests.support.api import bearer

EXAMPLES = int(os.environ.get("G2BHUB_FUZZ_EXAMPLES", "12"))
SEED_BASE = int(os.environ.get("G2BHUB_FUZZ_SEED", "9001"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
# caller → seed: one fixed seed per caller keeps CI reproducible while the callers explore differently.
CALLERS: dict[str, int] = {"anonymous": SEED_BASE, **{kind.value: SEED_BASE + 1 + i for i, kind in enumerate(OrgKind)}}


@dataclass
class Findings:
    cases: int = 0
    server_errors: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # one per operation and check


@pytest.fixture(scope="module")
def fuzz_world(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'hub.db'}"
    yield from seeded_world(url, sandbox, "fuzz seeding requests")


@pytest.fixture(scope="module")
def schema(fuzz_world: World) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_world.app)


def _strategy(operation: Any, objects: dict[str, str]) -> st.SearchStrategy[Case[Any]]:
    names = {p.name for p in operation.path_parameters}
    real = {name: int(v) if v.isdigit() else v for name, v in objects.items() if name in names}
    modes = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    if real:
        modes.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    return st.one_of(modes)


def fuzz(schema: Any, world: World, headers: dict[str, str], at_seed: int) -> Findings:
    found = Findings()
    for result in schema.get_all_operations():
        operation = result.ok()

        @seed(at_seed)
        @settings(max_examples=EXAMPLES * 2, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=_strategy(operation, world.objects))
        def run(case: Case[Any]) -> None:
            found.cases += 1
            response = case.call(headers=headers)
            if response.status_code >= 500:
                found.server_errors += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:  # the checks' verdicts: kept, the run goes on
                for failure in group.exceptions:
                    label = f"{operation.label}: {failure.title}"
                    found.failures.setdefault(label, f"{str(failure)[:600]}\n{case.as_curl_command()}")
            except Failure as failure:
                found.failures.setdefault(f"{operation.label}: {failure.title}",
                                          f"{str(failure)[:600]}\n{case.as_curl_command()}")

        run()
    return found


# The run grows with the operations (every route, twice EXAMPLES cases each): past the suite's default
# per-test timeout on a loaded machine, though bounded.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("caller", list(CALLERS))
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
        caller: str, schema: Any, fuzz_world: World) -> None:
    headers = {} if caller == "anonymous" else bearer(fuzz_world.owners[OrgKind(caller)].key)
    found = fuzz(schema, fuzz_world, headers, CALLERS[caller])
    TALLY["fuzz cases"] += found.cases
    TALLY["fuzz 5xx"] += found.server_errors
    assert found.cases >= 40 * EXAMPLES  # every operation ran, not an empty schema
    assert found.server_errors == 0 and not found.failures, "\n\n".join(
        f"{label}\n{detail}" for label, detail in sorted(found.failures.items()))


def test_the_fuzzed_hub_was_seeded_with_real_objects(fuzz_world: World) -> None:
    assert {"notice_id", "supplier_id", "subscription_id", "credential_id"} <= set(fuzz_world.objects)
    assert Path(str(fuzz_world.hub.settings.database.url).removeprefix("sqlite:///")).exists()
