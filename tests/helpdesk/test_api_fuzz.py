"""Property-based checks of the conversation API against its own OpenAPI schema: whatever
the body, an answer is documented, in the error shape, and never a 500."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation

from config.wsgi import application
from tests.factories import ContactFactory, ConversationFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application).include(
    path_regex=r"^/api/v1/conversations/"
)


@pytest.fixture
def _keep_connection():
    # Raw WSGI calls would close the test's database connection at the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def conversation(agent):
    contact = ContactFactory(agent=agent, attributes={})
    return ConversationFactory(agent=agent, contact=contact)


@pytest.mark.django_db
@pytest.mark.usefixtures("_keep_connection")
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_conversation_api_honours_its_schema(case, api_key, conversation):
    # Aim valid ids at a real conversation so bodies reach validation; a deliberately invalid
    # id is left alone (and must answer 404).
    if not (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        case.path_parameters["conversation_id"] = str(conversation.pk)
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key.raw}"})
