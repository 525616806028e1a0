"""The benchmark's world: one agent with N contacts, an admin user and an API key."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client

from workspaces.models import Agent, Membership
from workspaces.services import api_key_create, membership_set

BENCH_WORKSPACE = "Bench"
BENCH_AGENT = "Million"
BENCH_USER = "bench@rapport.local"
# The API key of each benchmark database (the PostgreSQL one and the SQLite file).
STATE_FILES = {"postgresql": Path("var/bench.json"), "sqlite": Path("var/bench-sqlite.json")}


@dataclass
class BenchContext:
    agent: Agent
    user: object
    api_key: str
    contacts: int

    def client(self) -> Client:
        client = Client()
        client.force_login(self.user)
        return client

    def api_client(self) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {self.api_key}")


def prepare(*, contacts: int, log) -> BenchContext:
    """Seed (or reuse) the bench agent up to `contacts` and make its user and API key."""
    out = io.StringIO()
    call_command(
        "seed_demo", workspace=BENCH_WORKSPACE, agent=BENCH_AGENT, contacts=contacts, stdout=out
    )
    log(out.getvalue().strip())
    agent = Agent.objects.select_related("workspace").get(
        workspace__name=BENCH_WORKSPACE, name=BENCH_AGENT
    )
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=BENCH_USER,
        defaults={"email": BENCH_USER, "is_staff": True, "is_superuser": True},
    )
    if not user.is_superuser:
        user.is_staff = user.is_superuser = True
        user.save()
    membership_set(user=user, workspace=agent.workspace, role=Membership.Role.ADMIN)

    _as_in_production(agent, out)
    state_file = STATE_FILES[connection.vendor]
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    from workspaces.selectors import api_key_lookup

    raw = state.get("api_key")
    if not raw or api_key_lookup(raw_key=raw) is None or api_key_lookup(raw_key=raw).agent != agent:
        raw = api_key_create(agent=agent, name="benchmark").raw
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"api_key": raw}))
    return BenchContext(agent=agent, user=user, api_key=raw, contacts=agent.contacts.count())


def _as_in_production(agent: Agent, out: io.StringIO) -> None:
    """The database as in production: the attribute sort indexes the table asks its worker
    to build for a large agent (here for the attributes the benchmark sorts and filters by),
    and the statistics the database would keep — on PostgreSQL autovacuum's (it is off on
    some servers) and its visibility map; on SQLite what the seeding or a large import
    leaves (ANALYZE), refreshed here for a database seeded before they did."""
    from attributes.models import AttributeDefinition

    keys = list(
        AttributeDefinition.objects.filter(agent=agent, key__in=["mrr", "plan"]).values_list(
            "key", flat=True
        )
    )
    if keys:
        call_command(
            "attribute_sort_indexes", agent_public_id=agent.public_id, key=keys, stdout=out
        )
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
        else:
            cursor.execute("VACUUM (ANALYZE) contacts_contact, contacts_contacttag, contacts_tag")
