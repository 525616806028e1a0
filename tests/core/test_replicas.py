"""Read replicas (core.replicas): which reads a standby serves, and that nobody ever misses
their own write or meets an error page because of one.

Three kinds of test. The router and health rules run everywhere with made-up measurements.
The middleware runs everywhere against a "loopback" alias: a second connection to the test
database itself, so the data is right whichever alias answers and the test tells them apart
by the queries each connection ran. And on PostgreSQL, with RAPPORT_TEST_REPLICA_URL naming
the standby `scripts/replica.sh up` starts, the real thing: WAL replay paused on the standby
while someone writes, to show who reads what. That last set skips without the variable,
except in CI (CI=true) on PostgreSQL, where a missing standby fails the run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.db import OperationalError, connection, connections, router, transaction
from django.db.utils import load_backend
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact
from core import replicas
from core.replicas import Measurement, ReplicaHealth, ReplicaMiddleware, health, replica_reads
from tests.factories import ContactFactory, ConversationFactory
from tests.helpers import ApiClient, agent_url, contact_url, list_url, table_names
from workspaces.models import Agent
from workspaces.services import api_key_create

REPLICA = "replica_test"
MIDDLEWARE = "core.replicas.ReplicaMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _fresh_health():
    health.reset()
    yield
    health.reset()


# A WAL position past anything a real primary has written (a loopback "standby" is never
# behind, and the pins of real writes on PostgreSQL must be satisfied by it).
CAUGHT_UP = 1 << 62


def _measured(*, replay: int = CAUGHT_UP, primary: int = CAUGHT_UP, age: float | None = 0.0, **kw):
    return Measurement(
        primary_lsn=primary,
        replay_lsn=replay,
        replay_age_seconds=age,
        in_recovery=kw.get("in_recovery", True),
        sampled_at=kw.get("sampled_at", time.monotonic()),
    )


class FakeMeasure:
    """Stands in for ReplicaHealth.measure: hands out the given measurements (or raises the
    given exceptions) in turn, the last one for ever; counts the calls."""

    def __init__(self, *results) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self, alias: str) -> Measurement:
        self.calls += 1
        result = self.results[0] if len(self.results) == 1 else self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result() if callable(result) else result


@pytest.fixture
def replicas_on(settings):
    """The settings DATABASE_REPLICA_URLS would give, for the alias REPLICA."""
    settings.DATABASE_REPLICAS = [REPLICA]
    settings.DATABASE_ROUTERS = ["core.replicas.ReplicaRouter"]
    settings.DATABASE_REPLICA_PIN_SECONDS = 5.0
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 10.0
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index(AUTH_MIDDLEWARE) + 1, MIDDLEWARE)
    settings.MIDDLEWARE = middleware
    return settings


@pytest.fixture
def healthy(monkeypatch):
    """Every measurement finds the standby caught up."""
    fake = FakeMeasure(lambda: _measured())
    monkeypatch.setattr(health, "measure", fake)
    return fake


@contextmanager
def _alias(name: str, **changes) -> Iterator[None]:
    """A database alias for one test: the test database's settings with `changes` (no pool,
    so nothing outlives the test). It is made as a connection of this thread only, not an
    entry of DATABASES, which is what Django's test isolation lets a test add and use."""
    config = copy.deepcopy(connections["default"].settings_dict)
    config["OPTIONS"].pop("pool", None)
    config.update(CONN_MAX_AGE=0, **changes)
    connections[name] = load_backend(config["ENGINE"]).DatabaseWrapper(config, name)
    try:
        yield
    finally:
        connections[name].close()
        del connections[name]


@pytest.fixture
def loopback(transactional_db, replicas_on, healthy):
    """REPLICA as a second connection to the test database, judged healthy."""
    with _alias(REPLICA):
        yield connections[REPLICA]


@contextmanager
def _reads_on(alias: str) -> Iterator[CaptureQueriesContext]:
    with CaptureQueriesContext(connections[alias]) as captured:
        yield captured


# --- The router ----------------------------------------------------------------------------


def test_reads_go_to_a_replica_only_inside_a_read_scope(replicas_on, healthy):
    assert router.db_for_read(Contact) == "default"
    with replica_reads():
        assert router.db_for_read(Contact) == REPLICA
        assert Contact.objects.all().db == REPLICA
        # Members, keys and secrets: never from a standby.
        assert router.db_for_read(Agent) == "default"
    assert router.db_for_read(Contact) == "default"


def test_writes_go_to_the_primary_and_the_rest_of_the_scope_reads_it(replicas_on, healthy):
    with replica_reads() as scope:
        assert router.db_for_read(Contact) == REPLICA
        assert router.db_for_write(Contact) == "default"
        # An instance read from the standby is saved on the primary all the same.
        read_there = Contact(name="x")
        read_there._state.db = REPLICA
        assert router.db_for_write(Contact, instance=read_there) == "default"
        assert scope.wrote
        assert router.db_for_read(Contact) == "default"


def test_a_write_to_an_app_that_is_never_replicated_keeps_the_scope(replicas_on, healthy):
    with replica_reads() as scope:
        assert router.db_for_write(Agent) == "default"  # e.g. an API key's last use
        assert not scope.wrote
        assert router.db_for_read(Contact) == REPLICA


@pytest.mark.django_db(transaction=True)
def test_reads_inside_a_transaction_on_the_primary_stay_there(replicas_on, healthy):
    with replica_reads():
        with transaction.atomic():
            assert router.db_for_read(Contact) == "default"
        assert router.db_for_read(Contact) == REPLICA


def test_migrations_run_on_the_primary_only(replicas_on):
    assert router.allow_migrate(REPLICA, "contacts") is False
    assert router.allow_migrate("default", "contacts") is True


def test_wal_positions_compare_as_numbers():
    assert replicas.parse_lsn("0/A6000320") == 0xA6000320
    assert replicas.parse_lsn("16/B374D848") > replicas.parse_lsn("F/FFFFFFFF")


# --- Health --------------------------------------------------------------------------------


def test_a_replica_whose_lag_exceeds_the_bound_is_skipped(replicas_on, monkeypatch):
    monkeypatch.setattr(health, "measure", FakeMeasure(_measured(replay=90, age=30.0)))
    verdict = health.verdict(REPLICA)
    assert not verdict.healthy
    assert verdict.lag_seconds == 30.0
    with replica_reads():
        assert router.db_for_read(Contact) == "default"

    health.reset()
    monkeypatch.setattr(health, "measure", FakeMeasure(_measured(replay=90, age=2.0)))
    with replica_reads():
        assert router.db_for_read(Contact) == REPLICA


def test_a_replica_of_an_idle_primary_is_not_lagging(replicas_on, monkeypatch):
    # Nothing committed for an hour: the last replayed transaction is old, nothing is missing.
    monkeypatch.setattr(health, "measure", FakeMeasure(_measured(age=3600.0)))
    assert health.verdict(REPLICA).healthy
    assert health.verdict(REPLICA).lag_seconds == 0.0


def test_lag_is_bounded_by_when_the_replica_was_last_caught_up(replicas_on, monkeypatch):
    monkeypatch.setattr(replicas, "CHECK_SECONDS", 0.0)
    # Caught up a moment ago; then the idle primary writes and the standby is a little behind:
    # its last replayed transaction is an hour old, yet it is at most a moment late.
    monkeypatch.setattr(
        health, "measure", FakeMeasure(_measured(), _measured(replay=100, primary=120, age=3600))
    )
    assert health.verdict(REPLICA).healthy
    verdict = health.verdict(REPLICA)
    assert verdict.healthy
    assert verdict.lag_seconds < 1

    health.reset()  # last caught up 20 s ago, beyond the 10 s bound
    monkeypatch.setattr(
        health,
        "measure",
        FakeMeasure(
            _measured(sampled_at=time.monotonic() - 20),
            _measured(replay=100, primary=120, age=3600),
        ),
    )
    assert health.verdict(REPLICA).healthy
    verdict = health.verdict(REPLICA)
    assert not verdict.healthy
    assert 19 < verdict.lag_seconds < 25


def test_a_standby_that_was_promoted_is_skipped(replicas_on, monkeypatch):
    monkeypatch.setattr(health, "measure", FakeMeasure(_measured(in_recovery=False)))
    verdict = health.verdict(REPLICA)
    assert (verdict.healthy, verdict.reason) == (False, "not in recovery")


def test_a_verdict_is_kept_for_a_second_per_process(replicas_on, healthy, monkeypatch):
    for _ in range(5):
        assert health.verdict(REPLICA).healthy
    assert healthy.calls == 1
    monkeypatch.setattr(replicas, "CHECK_SECONDS", 0.0)
    health.reset()
    health.verdict(REPLICA)
    health.verdict(REPLICA)
    assert healthy.calls == 3


def test_an_unreachable_replica_is_skipped_and_left_alone_for_a_while(replicas_on, monkeypatch):
    down = FakeMeasure(OperationalError("connection refused"))
    monkeypatch.setattr(health, "measure", down)
    for _ in range(3):
        verdict = health.verdict(REPLICA)
        assert not verdict.healthy
        assert verdict.reason.startswith("unreachable (OperationalError: connection refused")
    assert down.calls == 1  # not tried again on every query
    with replica_reads():
        assert router.db_for_read(Contact) == "default"

    monkeypatch.setattr(replicas, "DOWN_SECONDS", 0.0)
    health.reset()
    monkeypatch.setattr(health, "measure", FakeMeasure(down.results[0], _measured()))
    assert not health.verdict(REPLICA).healthy
    assert health.verdict(REPLICA).healthy  # back as soon as it answers again


# --- The middleware ------------------------------------------------------------------------


def _run_middleware(request, view):
    return ReplicaMiddleware(view)(request)


def _scope_seen(request) -> list:
    seen = []

    def view(request):
        seen.append(router.db_for_read(Contact))
        return HttpResponse("ok")

    _run_middleware(request, view)
    return seen


def test_only_safe_requests_outside_the_widget_may_read_a_replica(replicas_on, healthy):
    factory = RequestFactory()
    assert _scope_seen(factory.get("/a/ag_1/contacts/")) == [REPLICA]
    assert _scope_seen(factory.head("/api/v1/contacts/")) == [REPLICA]
    assert _scope_seen(factory.post("/a/ag_1/contacts/new/")) == ["default"]
    assert _scope_seen(factory.patch("/api/v1/contacts/x/")) == ["default"]
    assert _scope_seen(factory.get("/widget/v1/ag_1/conversations")) == ["default"]


@pytest.mark.django_db(transaction=True)
def test_a_get_that_wrote_pins_its_member(replicas_on, healthy):
    request = RequestFactory().get("/a/ag_1/inbox/")
    request.session = {SESSION_KEY: "42"}

    def view(request):
        assert router.db_for_read(Contact) == REPLICA
        Contact.objects.filter(pk=0).update(name="x")  # e.g. marking something as read
        return HttpResponse("ok")

    _run_middleware(request, view)
    pin = cache.get("replica-pin:user:42")
    assert pin is not None
    assert pin["until"] > time.time() + 4
    request = RequestFactory().get("/a/ag_1/inbox/")
    request.session = {SESSION_KEY: "42"}
    assert _scope_seen(request) == ["default"]


def test_a_failure_on_a_replica_that_went_away_is_answered_from_the_primary(
    replicas_on, monkeypatch
):
    # Healthy when chosen, gone when checked again after the failure.
    gone = FakeMeasure(_measured(), OperationalError("connection refused"))
    monkeypatch.setattr(health, "measure", gone)
    attempts = []

    def view(request):
        attempts.append(router.db_for_read(Contact))
        if attempts[-1] == REPLICA:
            return HttpResponse("replica died", status=500)
        return HttpResponse("from the primary")

    response = _run_middleware(RequestFactory().get("/a/ag_1/contacts/"), view)
    assert (response.status_code, response.content) == (200, b"from the primary")
    assert attempts == [REPLICA, "default"]


def test_a_server_error_with_a_healthy_replica_is_not_hidden(replicas_on, healthy):
    attempts = []

    def view(request):
        attempts.append(router.db_for_read(Contact))
        return HttpResponse("a bug", status=500)

    response = _run_middleware(RequestFactory().get("/a/ag_1/contacts/"), view)
    assert response.status_code == 500
    assert attempts == [REPLICA]


def test_a_streamed_body_reads_inside_the_request_scope(replicas_on, healthy):
    read_from = []

    def rows():
        read_from.append(router.db_for_read(Contact))
        yield b"a,b\n"
        read_from.append(router.db_for_read(Contact))

    def view(request):
        router.db_for_read(Contact)  # the view's own first read picks the standby
        return StreamingHttpResponse(rows())

    response = _run_middleware(RequestFactory().get("/api/v1/contacts/export/"), view)
    assert read_from == []
    assert b"".join(response.streaming_content) == b"a,b\n"
    assert read_from == [REPLICA, REPLICA]
    assert router.db_for_read(Contact) == "default"  # and nothing leaks out of the request


# Through the whole stack, against the loopback alias.


def test_the_table_is_read_from_the_replica(loopback, staff_client, agent, contact):
    with _reads_on(REPLICA) as on_replica, _reads_on("default") as on_primary:
        response = staff_client.get(list_url(agent))
    assert response.status_code == 200
    assert table_names(response) == ["Ada Lovelace"]
    assert any('"contacts_contact"' in q["sql"] for q in on_replica.captured_queries)
    assert not any('"contacts_contact"' in q["sql"] for q in on_primary.captured_queries)


def test_the_widget_never_reads_a_replica_over_http(loopback, agent):
    """The trust rule reads the primary only: a verified identify (a write), the GET that
    turns its session into a hand-off token and the GET of its conversation's messages (a
    read of the help desk, which other pages read from a replica) make no query on the
    replica, however healthy it is."""
    from django.urls import reverse

    from tests.identity.conftest import Widget, start_conversation

    widget = Widget(agent)
    identified = widget.jwt(user_id="u-1", email="ada@example.com")
    assert identified.status_code == 200, identified.content
    conversation = start_conversation(widget)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {widget.session_token}"}
    kwargs = {"agent_public_id": agent.public_id}
    with _reads_on(REPLICA) as on_replica:
        token = widget.client.get(reverse("identity:identity_token", kwargs=kwargs), **bearer)
        messages = widget.client.get(
            reverse(
                "helpdesk:widget-messages",
                kwargs={**kwargs, "conversation_id": str(conversation.pk)},
            ),
            **bearer,
        )
    assert token.status_code == 200, token.content
    assert token.json()["token"]
    assert messages.status_code == 200, messages.content
    assert on_replica.captured_queries == []


@pytest.mark.parametrize(
    ("page", "table"),
    [
        ("contact page", '"contacts_contact"'),
        ("inbox", '"helpdesk_conversation"'),
        ("API listing", '"contacts_contact"'),
    ],
)
def test_contact_pages_the_inbox_and_api_reads_come_from_the_replica(
    loopback, staff_client, agent, contact, key, page, table
):
    ConversationFactory(agent=agent, contact=contact)
    client, url = {
        "contact page": (staff_client, contact_url("detail", contact)),
        "inbox": (staff_client, agent_url("helpdesk:inbox", agent)),
        "API listing": (ApiClient(HTTP_AUTHORIZATION=f"Bearer {key.raw}"), "/api/v1/contacts/"),
    }[page]
    with _reads_on(REPLICA) as on_replica:
        response = client.get(url)
    assert response.status_code == 200
    assert "Ada Lovelace" in response.content.decode()
    assert any(table in q["sql"] for q in on_replica.captured_queries)


def test_a_member_who_wrote_reads_the_primary_for_the_pin_and_others_the_replica(
    loopback, settings, admin_client, staff_client, agent, contact
):
    settings.DATABASE_REPLICA_PIN_SECONDS = 0.5
    response = admin_client.post(agent_url("contacts:new", agent), {"name": "Grace Hopper"})
    assert response.status_code == 302

    with _reads_on(REPLICA) as on_replica:
        mine = admin_client.get(list_url(agent))
    assert len(on_replica) == 0
    assert set(table_names(mine)) == {"Ada Lovelace", "Grace Hopper"}
    with _reads_on(REPLICA) as on_replica:
        theirs = staff_client.get(list_url(agent))
    assert len(on_replica) > 0
    assert set(table_names(theirs)) == {"Ada Lovelace", "Grace Hopper"}

    time.sleep(0.6)  # the pin has run out (no WAL position to wait for on this loopback)
    with _reads_on(REPLICA) as on_replica:
        admin_client.get(list_url(agent))
    assert len(on_replica) > 0


def test_an_api_key_that_wrote_reads_the_primary_and_another_key_the_replica(loopback, agent, key):
    writer = ApiClient(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    reader = ApiClient(HTTP_AUTHORIZATION=f"Bearer {api_key_create(agent=agent, name='r').raw}")
    with _reads_on(REPLICA) as on_replica:
        assert writer.post("/api/v1/contacts/", {"name": "Grace Hopper"}).status_code == 201
    assert len(on_replica) == 0  # a write and its reads: the primary

    with _reads_on(REPLICA) as on_replica:
        names = [c["name"] for c in writer.get("/api/v1/contacts/").json()["results"]]
    assert (len(on_replica), names) == (0, ["Grace Hopper"])
    with _reads_on(REPLICA) as on_replica:
        names = [c["name"] for c in reader.get("/api/v1/contacts/").json()["results"]]
    assert len(on_replica) > 0
    assert names == ["Grace Hopper"]


def test_a_write_refused_for_a_wrong_api_key_pins_nothing(loopback, agent, key):
    response = ApiClient(HTTP_AUTHORIZATION="Bearer nope").post("/api/v1/contacts/", {"name": "X"})
    assert response.status_code == 401
    assert cache.get("replica-pin:key:" + hashlib.sha256(b"nope").hexdigest()[:40]) is None
    ApiClient(HTTP_AUTHORIZATION=f"Bearer {key.raw}").post("/api/v1/contacts/", {"name": "Y"})
    assert cache.get("replica-pin:key:" + hashlib.sha256(key.raw.encode()).hexdigest()[:40])


# --- Settings ------------------------------------------------------------------------------


def _settings_in_subprocess(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_replica_urls_become_aliases_with_the_router_and_middleware():
    done = _settings_in_subprocess(
        {
            "DATABASE_URL": "postgres://app@db.example/rapport",
            "DATABASE_REPLICA_URLS": "postgres://app@r1.example/rapport,"
            "postgres://app@r2.example:6432/rapport?sslmode=require",
            "DB_POOL_SIZE": "7",
        },
        "import json; from django.conf import settings as s;"
        "m = s.MIDDLEWARE; a = m.index('django.contrib.auth.middleware.AuthenticationMiddleware');"
        "print('SETTINGS', json.dumps({'replicas': s.DATABASE_REPLICAS, 'routers':"
        " s.DATABASE_ROUTERS, 'databases': s.DATABASES, 'after_auth': m[a + 1]}, default=str))",
    )
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("SETTINGS ")]
    found = json.loads(line.removeprefix("SETTINGS "))
    assert found["replicas"] == ["replica1", "replica2"]
    assert found["routers"] == ["core.replicas.ReplicaRouter"]
    assert found["after_auth"] == MIDDLEWARE
    first, second = found["databases"]["replica1"], found["databases"]["replica2"]
    assert (first["HOST"], first["NAME"], first["TEST"]["MIRROR"]) == (
        "r1.example",
        "rapport",
        "default",
    )
    assert (second["HOST"], second["PORT"]) == ("r2.example", 6432)
    assert second["OPTIONS"]["sslmode"] == "require"
    # Pooled like the primary; the pool keeps connections, so Django must not.
    assert second["OPTIONS"]["pool"]["max_size"] == 7
    assert first["CONN_MAX_AGE"] == 0


def test_without_replica_urls_nothing_changes_and_sqlite_refuses_them():
    done = _settings_in_subprocess(
        {},
        "from django.conf import settings as s;print('SETTINGS', s.DATABASE_ROUTERS, s.MIDDLEWARE)",
    )
    assert done.returncode == 0, done.stderr
    assert "SETTINGS [] [" in done.stdout
    assert MIDDLEWARE not in done.stdout
    done = _settings_in_subprocess(
        {"DATABASE_REPLICA_URLS": "postgres://r1.example/x"}, "print('started')"
    )
    assert done.returncode != 0
    assert "DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL." in done.stderr


# --- PostgreSQL: a standby that cannot be reached ------------------------------------------

needs_postgres = pytest.mark.skipif(
    not django_settings.IS_POSTGRES,
    reason="replicas are PostgreSQL standbys; this run's database is SQLite",
)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_postgres
@pytest.mark.django_db(transaction=True)
@needs_postgres
def test_a_copy_export_streams_from_the_replica(loopback, agent, key, monkeypatch):
    """On PostgreSQL an export is a COPY on a raw cursor, out of the ORM's sight: it must
    still run on the replica the router chose for the request."""
    from transfers.exports import copy as copy_export

    ContactFactory(agent=agent, name="Ada Lovelace")
    used: list[str] = []
    real = copy_export._copy

    def spy(*args, **kwargs):
        used.append(kwargs.get("using", "default"))
        return real(*args, **kwargs)

    monkeypatch.setattr(copy_export, "_copy", spy)
    response = ApiClient(HTTP_AUTHORIZATION=f"Bearer {key.raw}").get(
        "/api/v1/contacts/export/?format=csv"
    )
    assert response.status_code == 200
    assert "Ada Lovelace" in b"".join(response.streaming_content).decode()
    assert used == [REPLICA]


def test_a_down_replica_is_skipped_and_the_page_still_answers(
    replicas_on, staff_client, agent, contact
):
    with _alias(REPLICA, HOST="127.0.0.1", PORT=str(_closed_port())):
        started = time.monotonic()
        response = staff_client.get(list_url(agent))
        assert time.monotonic() - started < 5
        assert response.status_code == 200
        assert table_names(response) == ["Ada Lovelace"]
        verdict = health.verdict(REPLICA)
        assert not verdict.healthy
        assert verdict.reason.startswith("unreachable (OperationalError")


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_replica_that_dies_mid_request_is_replaced_by_the_primary(
    replicas_on, monkeypatch, agent, contact, key
):
    # Judged healthy when chosen; then every connection to it is refused (the real probe).
    monkeypatch.setattr(
        health, "measure", FakeMeasure(_measured(), lambda: ReplicaHealth.measure(health, REPLICA))
    )
    with _alias(REPLICA, HOST="127.0.0.1", PORT=str(_closed_port())):
        api = ApiClient(HTTP_AUTHORIZATION=f"Bearer {key.raw}", raise_request_exception=False)
        response = api.get("/api/v1/contacts/")
        assert response.status_code == 200
        assert [c["name"] for c in response.json()["results"]] == ["Ada Lovelace"]
        assert not health.verdict(REPLICA).healthy


# --- PostgreSQL: a real streaming replica ---------------------------------------------------

REPLICA_URL = os.environ.get("RAPPORT_TEST_REPLICA_URL", "")


def _skip_or_fail(reason: str):
    """Without a standby these tests skip, but CI on PostgreSQL must run them."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true on PostgreSQL needs the streaming replica: {reason}")
    pytest.skip(reason)


class Standby:
    """The standby of RAPPORT_TEST_REPLICA_URL, reached directly as a superuser."""

    def __init__(self, conninfo: dict) -> None:
        import psycopg

        self.admin = psycopg.connect(**conninfo, autocommit=True)

    def sql(self, query: str):
        return self.admin.execute(query).fetchone()

    def wait_for_replay(self, timeout: float = 15.0) -> None:
        """Until the standby has replayed all the primary has written."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            target = cursor.fetchone()[0]
        deadline = time.monotonic() + timeout
        while self.sql(f"SELECT pg_last_wal_replay_lsn() < '{target}'::pg_lsn")[0]:
            assert time.monotonic() < deadline, f"the standby did not reach {target}"
            time.sleep(0.05)

    @contextmanager
    def replay_paused(self) -> Iterator[None]:
        self.sql("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            self.sql("SELECT pg_wal_replay_resume()")


@pytest.fixture
def standby(transactional_db, replicas_on, monkeypatch):
    """REPLICA as the real standby, measured for real on every request (no verdict cache)."""
    if not django_settings.IS_POSTGRES:
        pytest.skip("read-replica tests need PostgreSQL (DATABASE_URL=postgres://…)")
    if not REPLICA_URL:
        _skip_or_fail(
            "set RAPPORT_TEST_REPLICA_URL=postgres://postgres@127.0.0.1:5433 after "
            "`bash scripts/replica.sh up`"
        )
    url = urlsplit(REPLICA_URL)
    # The standby streams the whole primary cluster: the test database is there too.
    name = connection.settings_dict["NAME"]
    where = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432}
    user = url.username or connection.settings_dict["USER"]
    try:
        standby = Standby({**where, "user": user, "password": url.password, "dbname": name})
    except Exception as exc:
        _skip_or_fail(f"cannot connect to the standby at {REPLICA_URL}: {exc}")
    if not standby.sql("SELECT pg_is_in_recovery()")[0]:
        pytest.fail(f"{REPLICA_URL} is not a standby (pg_is_in_recovery() is false)")
    monkeypatch.setattr(replicas, "CHECK_SECONDS", 0.0)
    changes = {"HOST": where["host"], "PORT": str(where["port"]), "USER": user, "NAME": name}
    with _alias(REPLICA, PASSWORD=url.password or "", **changes):
        try:
            standby.wait_for_replay()
            yield standby
        finally:
            if standby.sql("SELECT pg_is_wal_replay_paused()")[0]:
                standby.sql("SELECT pg_wal_replay_resume()")
            standby.admin.close()


def test_read_your_writes_while_the_replica_is_behind(
    standby, settings, admin_client, staff_client, agent, contact
):
    # No time-based pin at all: the writer is kept on the primary by the WAL position alone.
    settings.DATABASE_REPLICA_PIN_SECONDS = 0
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 60
    with _reads_on(REPLICA) as on_replica:
        assert table_names(staff_client.get(list_url(agent))) == ["Ada Lovelace"]
    assert len(on_replica) > 0

    with standby.replay_paused():
        response = admin_client.post(agent_url("contacts:new", agent), {"name": "Grace Hopper"})
        assert response.status_code == 302
        assert Contact.objects.filter(name="Grace Hopper").exists()  # committed on the primary

        # The writer sees their contact: pinned to the primary until a standby has it.
        with _reads_on(REPLICA) as on_replica:
            mine = table_names(admin_client.get(list_url(agent)))
        assert (len(on_replica), set(mine)) == (0, {"Ada Lovelace", "Grace Hopper"})
        # Anyone else reads the paused standby, which does not have it yet: proof that their
        # page really came from the replica.
        with _reads_on(REPLICA) as on_replica:
            theirs = table_names(staff_client.get(list_url(agent)))
        assert len(on_replica) > 0
        assert theirs == ["Ada Lovelace"]

    standby.wait_for_replay()
    for client in (staff_client, admin_client):  # the writer's pin is satisfied now
        with _reads_on(REPLICA) as on_replica:
            names = table_names(client.get(list_url(agent)))
        assert len(on_replica) > 0
        assert set(names) == {"Ada Lovelace", "Grace Hopper"}


def test_an_api_key_reads_its_own_writes_while_the_replica_is_behind(
    standby, settings, agent, contact, key
):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 60
    writer = ApiClient(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    reader = ApiClient(HTTP_AUTHORIZATION=f"Bearer {api_key_create(agent=agent, name='r').raw}")
    url = f"/api/v1/contacts/{contact.pk}/"
    standby.wait_for_replay()

    with standby.replay_paused():
        assert writer.patch(url, {"name": "Ada King"}).json()["name"] == "Ada King"
        assert writer.get(url).json()["name"] == "Ada King"
        with _reads_on(REPLICA) as on_replica:
            assert reader.get(url).json()["name"] == "Ada Lovelace"
        assert len(on_replica) > 0

    standby.wait_for_replay()
    assert reader.get(url).json()["name"] == "Ada King"


def test_a_replica_lagging_beyond_the_bound_is_skipped(standby, settings, staff_client, agent):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 0.5
    ContactFactory(agent=agent, name="Ada Lovelace")
    standby.wait_for_replay()
    with _reads_on(REPLICA) as on_replica:
        staff_client.get(list_url(agent))
    assert len(on_replica) > 0

    with standby.replay_paused():
        with transaction.atomic():
            ContactFactory(agent=agent, name="Grace Hopper")
        time.sleep(1.0)  # the standby is now more than 0.5 s behind
        with _reads_on(REPLICA) as on_replica:
            names = table_names(staff_client.get(list_url(agent)))
        assert len(on_replica) == 0
        assert set(names) == {"Ada Lovelace", "Grace Hopper"}
        assert not health.verdict(REPLICA).healthy

    standby.wait_for_replay()
    with _reads_on(REPLICA) as on_replica:
        names = table_names(staff_client.get(list_url(agent)))
    assert len(on_replica) > 0  # caught up: in use again, with the transaction's contact
    assert set(names) == {"Ada Lovelace", "Grace Hopper"}
