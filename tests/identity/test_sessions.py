from __future__ import annotations

import pytest
from django.core import signing

from identity.sessions import (
    SESSION_SALT,
    InvalidSessionToken,
    session_token_issue,
    session_token_verify,
    visitor_session_get_or_create,
)

pytestmark = pytest.mark.django_db


def test_a_session_token_round_trips_for_its_agent_only(agent, other_agent):
    session = visitor_session_get_or_create(agent=agent, visitor_id="v-1")
    assert visitor_session_get_or_create(agent=agent, visitor_id="v-1") == session
    token = session_token_issue(session=session, agent=agent)
    assert session_token_verify(token=token, agent=agent) == session
    with pytest.raises(InvalidSessionToken, match="another agent"):
        session_token_verify(token=token, agent=other_agent)


def test_forged_expired_and_empty_tokens_are_refused(agent, settings):
    session = visitor_session_get_or_create(agent=agent, visitor_id="v-1")
    token = session_token_issue(session=session, agent=agent)
    with pytest.raises(InvalidSessionToken, match="not valid"):
        session_token_verify(token=token[:-2] + "xx", agent=agent)
    forged = signing.dumps({"a": agent.public_id, "s": str(session.pk)}, salt="other")
    with pytest.raises(InvalidSessionToken):
        session_token_verify(token=forged, agent=agent)
    with pytest.raises(InvalidSessionToken):
        session_token_verify(token="", agent=agent)
    settings.WIDGET_SESSION_MAX_AGE_SECONDS = -1
    with pytest.raises(InvalidSessionToken, match="expired"):
        session_token_verify(
            token=signing.dumps({"a": agent.public_id, "s": str(session.pk)}, salt=SESSION_SALT),
            agent=agent,
        )
