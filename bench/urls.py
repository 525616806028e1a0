"""The project's URLs plus `bench/ceiling/<agent>`: the framework-plus-database ceiling the
identify section compares itself with.

The ceiling view does the least a widget endpoint can: it goes through the same middleware
and URL resolver (its pattern is last, so resolving it walks every other one), reads the
same JSON body, makes one indexed query (the contact with the token's user id, by the
(agent, external_id) index identify also reads) and answers a small JSON object. What
identify costs beyond it is its own work: the signature, the upsert, the session.
"""

from __future__ import annotations

import json

import jwt
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.urls import urlpatterns as project_urlpatterns
from core.prepared import prepared


@csrf_exempt
@require_POST
def ceiling(request: HttpRequest, agent_pk: int) -> JsonResponse:
    body = json.loads(request.body)
    # The user id read without verifying the signature: verifying is identify's own work.
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    with connection.cursor() as cursor:
        cursor.execute(
            # Kept prepared like identify's own statements (core.prepared): a strict ceiling.
            prepared("SELECT id FROM contacts_contact WHERE agent_id = %s AND external_id = %s"),
            [agent_pk, claims["user_id"]],
        )
        row = cursor.fetchone()
    return JsonResponse({"contact": None if row is None else {"id": str(row[0])}})


urlpatterns = [*project_urlpatterns, path("bench/ceiling/<int:agent_pk>", ceiling)]
