"""Rate limits hold across processes (SPEC 9): per API key, per sign-in, and on the public
widget per client address and per agent, with 429 and Retry-After."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from contacts.models import Contact
from core import ratelimit
from tests.identity.conftest import Widget
from workspaces.services import api_key_create

ROOT = Path(__file__).resolve().parents[2]


# --- The counters ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_counter_allows_the_rate_then_says_how_long_to_wait():
    verdicts = [ratelimit.hit("t", "me", "3/hour") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.count for v in verdicts] == [1, 2, 3, 4]
    assert 1 <= verdicts[-1].retry_after <= 3600
    assert ratelimit.hit("t", "someone-else", "3/hour").allowed
    assert ratelimit.hit("other-scope", "me", "3/hour").allowed
    ratelimit.forget("t", "me", "3/hour")
    assert ratelimit.hit("t", "me", "3/hour").count == 1


@pytest.mark.django_db
def test_several_limits_are_counted_in_one_statement(django_assert_num_queries):
    with django_assert_num_queries(1):
        first, second = ratelimit.hit_many([("a", "x", "1/hour"), ("b", "x", "5/hour")])
    assert (first.allowed, second.allowed) == (True, True)
    first, second = ratelimit.hit_many([("a", "x", "1/hour"), ("b", "x", "5/hour")])
    assert (first.allowed, first.count, second.allowed, second.count) == (False, 2, True, 2)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="commit durability is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_counter_on_its_own_commits_without_a_flush_and_leaves_a_callers_durability():
    """Every caller of one agent updates the same counter row: a durable commit made each
    wait for the previous one's disk flush. On its own the statement relaxes its commit;
    inside a caller's transaction it must not relax the caller's writes."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    def durability() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with CaptureQueriesContext(connection) as alone:
        verdict = ratelimit.hit("t", "me", "3/hour")
    assert verdict.count == 1
    assert verdict.allowed
    assert "set_config('synchronous_commit', 'off', true)" in alone.captured_queries[-1]["sql"]
    assert durability() == "on"  # it lasted for that statement's own transaction only

    with transaction.atomic():
        with CaptureQueriesContext(connection) as inside:
            assert ratelimit.hit("t", "me", "3/hour").count == 2
        assert "synchronous_commit" not in inside.captured_queries[-1]["sql"]
        assert durability() == "on"


def _redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.django_db
@pytest.mark.skipif(
    not _redis_reachable() and os.environ.get("CI") != "true",
    reason="no Redis server at 127.0.0.1:6379",
)
def test_with_redis_the_counters_live_in_the_shared_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
        }
    }
    settings.RATE_LIMIT_STORE = "cache"
    from django.core.cache import cache

    cache.clear()
    assert [ratelimit.hit("t", "me", "2/hour").allowed for _ in range(3)] == [True, True, False]
    assert ratelimit.hit_many([("t", "me", "2/hour"), ("u", "me", "2/hour")])[1].count == 1
    assert not ratelimit.RateCounter.objects.exists()
    ratelimit.forget("t", "me", "2/hour")
    assert ratelimit.hit("t", "me", "2/hour").count == 1
    cache.clear()


# --- Several processes ---------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _in_processes(script: str, *, processes: int = 3, env: dict[str, str]) -> list[str]:
    """Run `script` (with Django set up on the test database) in several processes at
    once; each prints one line. The lines, in process order."""
    prelude = "import django, sys\ndjango.setup()\nfrom django.test import Client\n"
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(),
        **env,
    }
    running = [
        subprocess.Popen(  # noqa: S603 - our own interpreter running our own script
            [sys.executable, "-c", prelude + textwrap.dedent(script)],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    lines = []
    for process in running:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-3000:]
        lines.append(out.strip().splitlines()[-1])
    return lines


def _statuses(lines: list[str]) -> list[int]:
    return [int(code) for line in lines for code in line.split(",")]


@pytest.mark.django_db(transaction=True)
def test_an_api_key_limit_holds_across_three_processes(agent):
    key = api_key_create(agent=agent, name="sync").raw
    lines = _in_processes(
        f"""
        client = Client(HTTP_AUTHORIZATION="Bearer {key}")
        print(",".join(str(client.get("/api/v1/tags/").status_code) for _ in range(8)))
        """,
        env={"API_RATE_LIMIT": "10/day"},
    )
    statuses = _statuses(lines)
    assert statuses.count(200) == 10
    assert statuses.count(429) == 14


@pytest.mark.django_db(transaction=True)
def test_sign_in_failures_are_counted_across_three_processes(admin_user):
    lines = _in_processes(
        f"""
        client = Client()
        codes = [
            client.post("/login/", {{"username": "{admin_user.username}", "password": "wrong"}})
            .status_code
            for _ in range(5)
        ]
        print(",".join(map(str, codes)))
        """,
        env={"LOGIN_MAX_FAILURES": "5", "LOGIN_FAILURE_WINDOW_SECONDS": "86400"},
    )
    statuses = _statuses(lines)
    assert statuses.count(400) == 5  # evaluated: a wrong password
    assert statuses.count(429) == 10  # refused before the password was checked


@pytest.mark.django_db(transaction=True)
def test_the_widget_limit_per_address_holds_across_three_processes(agent):
    lines = _in_processes(
        f"""
        import json, uuid
        client = Client()
        codes = []
        for _ in range(4):
            body = {{"visitor_id": str(uuid.uuid4()), "email": f"{{uuid.uuid4().hex}}@example.com"}}
            response = client.post(
                "/widget/v1/{agent.public_id}/identify",
                json.dumps(body),
                content_type="application/json",
            )
            codes.append(response.status_code)
        print(",".join(map(str, codes)))
        """,
        env={"WIDGET_RATE_LIMIT_PER_ADDRESS": "6/day"},
    )
    statuses = _statuses(lines)
    assert statuses.count(200) == 6
    assert statuses.count(429) == 6
    assert Contact.objects.filter(agent=agent).count() == 6


# --- The public widget ------------------------------------------------------------------------


@pytest.mark.django_db
def test_identify_past_the_address_limit_is_a_429_with_cors_and_creates_nothing(agent, settings):
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "3/hour"
    for n in range(3):
        assert Widget(agent).identify({"email": f"v{n}@example.com"}).status_code == 200
    refused = Widget(agent).identify({"email": "late@example.com"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert not Contact.objects.filter(email="late@example.com").exists()
    # Another address is not affected.
    other = Widget(agent).identify({"email": "x@example.com"}, REMOTE_ADDR="203.0.113.9")
    assert other.status_code == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="commit durability is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_identify_over_http_counts_with_a_relaxed_commit_and_the_trust_rule_holds(agent, settings):
    """The widget's limits counted by the relaxed statement (autocommit, as in production):
    a signed identify verifies its user; an unsigned call naming that user's email, from
    another browser or from this visitor id without its session token, does not reach the
    verified contact; past the limit a call is refused and changes nothing."""
    from django.test.utils import CaptureQueriesContext

    from identity.models import VisitorSession

    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "3/hour"
    widget = Widget(agent)
    with CaptureQueriesContext(connection) as ran:
        signed = widget.jwt(user_id="u-1", contact_attributes={"email": "ada@example.com"})
    assert signed.status_code == 200
    counted = [q["sql"] for q in ran.captured_queries if "core_ratecounter" in q["sql"]]
    assert len(counted) == 1
    assert "set_config('synchronous_commit', 'off', true)" in counted[0]
    verified = Contact.objects.get(agent=agent, external_id="u-1")
    assert signed.json()["contact"]["id"] == str(verified.pk)

    other = Widget(agent)
    unsigned = other.identify({"email": "ada@example.com"})
    assert unsigned.status_code == 200
    assert unsigned.json()["contact"]["id"] != str(verified.pk)
    other_session = VisitorSession.objects.get(agent=agent, visitor_id=other.visitor_id)
    assert other_session.contact_id != verified.pk

    # The signed-in visitor's id, but not its session token.
    borrowed = widget.identify({"email": "ada@example.com"}, keep_token=False)
    assert borrowed.status_code == 200
    assert borrowed.json()["contact"]["id"] != str(verified.pk)

    # That was the address's third call: the next one is refused and changes nothing.
    before = VisitorSession.objects.get(agent=agent, visitor_id=widget.visitor_id).contact_id
    refused = widget.jwt(user_id="u-2")
    assert refused.status_code == 429
    assert not Contact.objects.filter(agent=agent, external_id="u-2").exists()
    assert (
        VisitorSession.objects.get(agent=agent, visitor_id=widget.visitor_id).contact_id == before
    )


@pytest.mark.django_db
def test_starting_conversations_counts_against_the_same_limit(agent, settings):
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "2/hour"
    widget = Widget(agent)
    widget.identify({})
    url = f"/widget/v1/{agent.public_id}/conversations"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {widget.session_token}"}
    first = Client().post(url, "{}", content_type="application/json", **auth)
    assert first.status_code == 201
    refused = Client().post(url, "{}", content_type="application/json", **auth)
    assert refused.status_code == 429
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert Contact.objects.filter(agent=agent).count() == 1
    # Reading and writing messages in an existing conversation is not limited here.
    conversation = first.json()["conversation"]["id"]
    messages = Client().get(f"{url}/{conversation}/messages", **auth)
    assert messages.status_code == 200


@pytest.mark.django_db
def test_the_agent_limit_covers_every_address(agent, settings):
    settings.WIDGET_RATE_LIMIT_PER_AGENT = "2/hour"
    codes = [
        Widget(agent).identify({}, REMOTE_ADDR=f"198.51.100.{n}").status_code for n in range(3)
    ]
    assert codes == [200, 200, 429]


@pytest.mark.django_db
def test_the_forwarded_address_counts_only_behind_a_trusted_proxy(agent, settings):
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1/hour"

    def call(forwarded: str) -> int:
        return (
            Widget(agent)
            .identify({}, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
            .status_code
        )

    # Not behind a proxy: X-Forwarded-For is the client's word and changes nothing.
    assert [call("192.0.2.1"), call("192.0.2.2")] == [200, 429]
    settings.BEHIND_TLS_PROXY = True
    # Behind one: the last entry (added by the proxy) is the client; spoofed ones are not.
    assert call("192.0.2.3") == 200
    assert call("6.6.6.6, 192.0.2.3") == 429
    assert call("192.0.2.4") == 200


# --- Sign-in ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "target", ["abc", "contacts:list", "//evil.example/", "https://evil.example/"]
)
def test_a_bad_next_is_ignored_at_sign_in(admin_user, target):
    response = Client().post(
        f"{reverse('login')}?next={target}",
        {"username": admin_user.username, "password": "correct horse battery"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    page = Client().get(reverse("login"), {"next": target})
    assert page.status_code == 200


@pytest.mark.django_db
def test_a_good_next_is_followed_and_a_success_clears_the_failures(admin_user, settings):
    settings.LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(2):
        client.post(reverse("login"), {"username": admin_user.username, "password": "bad"})
    ok = client.post(
        f"{reverse('login')}?next=/settings/",
        {"username": admin_user.username, "password": "correct horse battery"},
    )
    assert (ok.status_code, ok["Location"]) == (302, "/settings/")
    client.logout()
    for _ in range(3):
        bad = client.post(reverse("login"), {"username": admin_user.username, "password": "x"})
        assert bad.status_code == 400
    locked = client.post(reverse("login"), {"username": admin_user.username, "password": "x"})
    assert locked.status_code == 429


@pytest.mark.django_db
def test_the_django_admin_sign_in_is_throttled_like_the_dashboards(admin_user, settings):
    settings.LOGIN_MAX_FAILURES = 2
    client = Client()
    codes = [
        client.post("/django-admin/login/", {"username": "nobody", "password": "x"}).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]  # the admin re-shows its form on a wrong password
    # The same counter as the dashboard's: that user name is locked there too.
    dashboard = client.post(reverse("login"), {"username": "nobody", "password": "x"})
    assert dashboard.status_code == 429


def test_the_django_admin_is_not_routed_unless_enabled(settings):
    import importlib

    from django.urls import clear_url_caches, resolve
    from django.urls.exceptions import Resolver404

    import config.urls

    settings.DJANGO_ADMIN_ENABLED = False
    try:
        clear_url_caches()
        importlib.reload(config.urls)
        with pytest.raises(Resolver404):
            resolve("/django-admin/login/")
        with pytest.raises(Resolver404):
            resolve("/django-admin/")
    finally:
        settings.DJANGO_ADMIN_ENABLED = True
        importlib.reload(config.urls)
        clear_url_caches()
    assert resolve("/django-admin/login/").url_name == "admin-login"
