from __future__ import annotations

import os
import shutil

import pytest
from django.test import Client
from django.test.testcases import LiveServerThread

from attributes.selectors import attribute_definition_map
from core.actors import Actor, Channel
from core.servers import BurstTolerantThreadedWSGIServer
from tests.factories import (
    AgentFactory,
    AttributeFactory,
    ContactFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.helpers import ApiClient
from workspaces.models import Membership
from workspaces.services import api_key_create, identity_secret_create

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# The live server of the browser tests listens like `make run` does (core.servers).
LiveServerThread.server_class = BurstTolerantThreadedWSGIServer


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory):
    """Uploaded import files and reports go to a temporary folder, never into the checkout."""
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture(autouse=True)
def _clear_cache(request):
    """Each test starts with empty caches. The shared cache is a database table (or Redis):
    a test's own transaction rolls it back, so only tests that commit need it emptied."""
    from django.core.cache import cache, caches

    from workspaces import agent_cache

    marker = request.node.get_closest_marker("django_db")
    commits = marker is not None and marker.kwargs.get("transaction")
    if commits:
        request.getfixturevalue("transactional_db")
        cache.clear()
    caches["local"].clear()
    agent_cache.clear()
    yield
    agent_cache.clear()


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def agent(workspace):
    agent = AgentFactory(workspace=workspace, name="Support")
    identity_secret_create(agent=agent)
    return agent


@pytest.fixture
def admin_user(workspace):
    user = UserFactory(username="admin@acme.test")
    MembershipFactory(user=user, workspace=workspace, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def staff_user(workspace):
    user = UserFactory(username="staff@acme.test")
    MembershipFactory(user=user, workspace=workspace, role=Membership.Role.STAFF)
    return user


@pytest.fixture
def admin_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def other_agent(db):
    """An agent of another workspace, with its own admin: nothing of it may leak."""
    other = AgentFactory(workspace=WorkspaceFactory(name="Globex", slug="globex"), name="Sales")
    identity_secret_create(agent=other)
    return other


@pytest.fixture
def key(agent):
    return api_key_create(agent=agent, name="test")


@pytest.fixture
def api(key) -> ApiClient:
    """A client speaking for `agent` with its API key."""
    return ApiClient(HTTP_AUTHORIZATION=f"Bearer {key.raw}")


@pytest.fixture
def other_api(other_agent) -> ApiClient:
    """A client with the key of another workspace's agent."""
    return ApiClient(HTTP_AUTHORIZATION=f"Bearer {api_key_create(agent=other_agent, name='x').raw}")


@pytest.fixture
def schema(agent):
    """One attribute of each type, like a real agent's schema."""
    AttributeFactory(agent=agent, key="plan", label="Plan", type="select", options=["Free", "Pro"])
    AttributeFactory(agent=agent, key="mrr", label="MRR", type="number")
    AttributeFactory(agent=agent, key="beta", label="Beta tester", type="boolean")
    AttributeFactory(agent=agent, key="signup", label="Signup date", type="date")
    AttributeFactory(agent=agent, key="last_order", label="Last order", type="datetime")
    AttributeFactory(agent=agent, key="website", label="Website", type="url")
    AttributeFactory(agent=agent, key="city", label="City", type="text")
    AttributeFactory(agent=agent, key="ltv", label="Lifetime value", type="number", secure=True)
    return attribute_definition_map(agent=agent)


@pytest.fixture
def contact(agent):
    return ContactFactory(agent=agent, name="Ada Lovelace", email="ada@example.com")


@pytest.fixture
def no_widget_rate_limit(settings):
    """For tests that send hundreds of widget calls from one address: the limits are not
    what they test (tests/core/test_services_rate_limits.py does)."""
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1000000/minute"


@pytest.fixture
def api_actor() -> Actor:
    return Actor(channel=Channel.API, label="API key test")


@pytest.fixture
def admin_actor(admin_user) -> Actor:
    return Actor.staff(admin_user, is_admin=True)


@pytest.fixture
def staff_actor(staff_user) -> Actor:
    return Actor.staff(staff_user, is_admin=False)


@pytest.fixture
def widget_actor() -> Actor:
    return Actor.widget()


# --- Browser tests -------------------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    """Browser tests need Chromium: without it they skip, except in CI where they must run."""
    if os.path.exists(CHROMIUM) or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}
