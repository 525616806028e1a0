"""REST API v1 for contacts (SPEC 5): validate -> service or selector -> contact JSON.

Every endpoint sees only the agent of the request's API key (a foreign or unknown id is
404), writes through contacts.services with the API actor, lists through contacts.query,
and answers errors in the one shape of core.api.errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attributes.models import AttributeDefinition
from attributes.selectors import attribute_definition_map
from contacts import services
from contacts.models import IDENTITY_RANK, SORTABLE_FIELDS, Contact, Identity
from contacts.query.filterset import MATCH_CHOICES, SEEN_CHOICES, ContactFilterSet
from contacts.query.keyset import keyset_page
from contacts.query.segments import (
    parse_segment_id,
    segment_filters,
    segment_params,
    segments_shared,
)
from contacts.selectors import (
    contact_get,
    contact_queryset,
    table_count,
    tags_with_counts,
)
from contacts.serialization import contact_to_dict
from contacts.serializers import (
    MAX_BULK,
    BulkResultSerializer,
    ContactBulkSerializer,
    ContactEnsureSerializer,
    ContactMergeSerializer,
    ContactPageSerializer,
    ContactPatchSerializer,
    ContactSerializer,
    ContactWriteSerializer,
    EnsureResultSerializer,
    SegmentListSerializer,
    TagListSerializer,
    TagNamesSerializer,
)
from core.api.errors import api_exception_handler
from core.api.paging import CURSOR, PAGE_SIZE, page_url, query_page_size
from core.api.request import query_flag, refuse_nul, validated
from core.api.schema import BODY_ERRORS, errors
from core.errors import DomainError, ValidationFailed
from core.keyset import InvalidCursor
from core.times import iso
from workspaces.api import api_actor, api_agent
from workspaces.models import Agent

# --- Documentation helpers -------------------------------------------------------------------

CONTACT_ID = OpenApiParameter(
    "contact_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The contact's id."
)
INCLUDE_ARCHIVED = OpenApiParameter(
    "include_archived_attributes",
    OpenApiTypes.BOOL,
    description="Also return values of archived attributes (hidden by default).",
)


def _date_param(name: str, text: str) -> OpenApiParameter:
    return OpenApiParameter(
        name, str, description=f"{text} (ISO 8601 date or date-time; a date alone means UTC)."
    )


LIST_PARAMETERS = [
    CURSOR,
    PAGE_SIZE,
    OpenApiParameter("q", str, description="Search name, email, phone digits, external id, tags."),
    OpenApiParameter(
        "tag",
        {"type": "array", "items": {"type": "string"}},
        explode=True,
        description="Contacts carrying this tag; repeat the parameter to require several.",
    ),
    OpenApiParameter(
        "identity",
        {"type": "array", "items": {"type": "string", "enum": list(Identity.values)}},
        explode=True,
        description="Identity level; repeat (or separate with commas) for any of several.",
    ),
    _date_param("created_after", "Created at or after"),
    _date_param("created_before", "Created at or before (a date includes the whole day)"),
    _date_param("updated_after", "Updated at or after"),
    _date_param("updated_before", "Updated at or before"),
    _date_param("last_seen_after", "Last seen at or after"),
    _date_param("last_seen_before", "Last seen at or before"),
    OpenApiParameter(
        "seen", str, enum=list(SEEN_CHOICES), description="Last-seen window (as the dashboard)."
    ),
    OpenApiParameter(
        "deleted", OpenApiTypes.BOOL, description="true lists soft-deleted contacts instead."
    ),
    OpenApiParameter(
        "match",
        str,
        enum=list(MATCH_CHOICES),
        description=(
            "How the conditions combine: `all` (default) keeps contacts meeting every "
            "condition, `any` those meeting at least one. Conditions are the `attr.<key>…` and "
            "`<field>…` parameters (see the operation's description); every other filter "
            "(`q`, `tag`, `identity`, dates, `seen`, `deleted`) always applies. Example: "
            "`match=any&attr.plan=pro&conversation_count__gte=3&tag__eq=vip`."
        ),
    ),
    OpenApiParameter(
        "ordering",
        {"type": "string", "pattern": r"^(-?([a-z_]+|attr\.[a-z][a-z0-9_]{0,62}))?$"},
        description=(
            f"Sort by a core field ({', '.join(SORTABLE_FIELDS)}) or attr.<key>; prefix - for "
            "descending (-conversation_count: most conversations first). Default -created_at. "
            "Ties are broken by id, so pages are stable."
        ),
    ),
    INCLUDE_ARCHIVED,
]
SEGMENT = OpenApiParameter(
    "segment",
    {"type": "integer", "minimum": 1},
    description=(
        "Only the contacts of this shared segment (GET /api/v1/segments/), in its saved "
        "order. The other parameters narrow it further (they apply *and* the segment's "
        "conditions apply, each set combined by its own `match`); `ordering` and `deleted`, "
        "when given, replace the segment's. 404 for an id that is not one of the agent's "
        "shared segments; 400 when the segment no longer applies (an attribute it uses was "
        "deleted)."
    ),
)

LIST_DESCRIPTION = """\
Contacts of the API key's agent, one page at a time. Follow `next` (or `previous`) to move:
cursor pages cost the same at any depth and never skip or repeat a contact while others are
added.

**Conditions** on custom attributes, `attr.<key>=value` or `attr.<key>__<op>=value`, and on
contact fields, `<field>=value` or `<field>__<op>=value` with `<field>` one of `name`,
`email`, `phone`, `company`, `external_id`, `tag` (operator form only: `tag=` is the filter
above), `conversation_count`, `created_at`, `updated_at`, `last_seen_at`, `first_seen_at`.
Repeat a parameter for several values; `match=any` makes any one condition enough.

- `eq` (or no operator): is. Text ignores case; a date alone is that whole day (UTC).
- `ne`: is not; contacts without a value match too (not for dates).
- `contains`, `not_contains`: has, or has not, this text in it (text, url and select
  attributes; name, email, phone digits, company, external_id).
- `gt`, `gte`, `lt`, `lte`: > ≥ < ≤, or after / on or after / before / on or before
  (numbers, dates, date-times, conversation_count, the date fields).
- `between`: `low,high`, both ends included; `2024-01-01,2024-03-31` is all of Q1.
- `within`: in the last N days (`30`); `older`: more than N days ago (`90`). Dates only.
- `exists`: `true` has any value, `false` is empty (`tag__exists`: any tag, or none;
  not for created_at, updated_at and conversation_count, which every contact has).

Values are read by the attribute's type or the field's kind, e.g.
`attr.mrr__gte=100&attr.plan__ne=pro&email__contains=@acme.com&last_seen_at__within=30`.
An unknown field, attribute or operator, an operator that does not apply, or a value that
cannot be read (an impossible date, a word for a number) answers 400 naming the parameter.
At most 50 conditions per request.
"""


# --- Request helpers ---------------------------------------------------------------------------


# List parameters whose value is a choice: given empty, they are a mistake, not "any".
CHOICE_PARAMETERS = ("identity", "seen", "deleted", "match")


def refuse_empty_choices(params: Mapping[str, Any]) -> None:
    empty = [
        name
        for name in CHOICE_PARAMETERS
        if name in params and any(not v.strip() for v in params.getlist(name))
    ]
    if empty:
        raise serializers.ValidationError(
            {name: ["Give a value, or leave the parameter out."] for name in empty}
        )


def visible_keys(
    definitions: Mapping[str, AttributeDefinition], *, include_archived: bool = False
) -> Collection[str] | None:
    if include_archived:
        return None
    return {key for key, d in definitions.items() if not d.archived}


def contact_or_404(agent: Agent, contact_id: Any, *, role: str = "") -> Contact:
    try:
        return contact_get(agent=agent, contact_id=contact_id)
    except Contact.DoesNotExist:
        what = f"The {role} contact" if role else "No contact"
        message = (
            f"{what} ({contact_id}) does not exist for this agent."
            if role
            else f"No contact with id {contact_id} for this agent."
        )
        raise exceptions.NotFound(message) from None


def shared_segment_or_404(agent: Agent, raw: Any):
    """The agent's shared segment a `segment` parameter names (an API key has no user, so
    private segments are nobody's business here)."""
    pk = parse_segment_id(raw)
    if pk is None:
        raise serializers.ValidationError(
            {
                "segment": [
                    "Use the id of one of the agent's shared segments (GET /api/v1/segments/)."
                ]
            }
        )
    segment = segments_shared(agent=agent).filter(pk=pk).first()
    if segment is None:
        raise exceptions.NotFound(f"No shared segment with id {pk} for this agent.")
    return segment


def contact_json(
    agent: Agent, contact: Contact, *, definitions=None, include_archived: bool = False
) -> dict[str, Any]:
    """The contact as SPEC 5 JSON, re-read with its tags and Stripe accounts."""
    fresh = contact_get(agent=agent, contact_id=contact.pk)
    if definitions is None:
        definitions = attribute_definition_map(agent=agent)
    return contact_to_dict(
        fresh, visible_keys=visible_keys(definitions, include_archived=include_archived)
    )


def upsert_one(
    *, agent: Agent, actor, data: dict[str, Any], definitions: Mapping[str, AttributeDefinition]
) -> services.ContactWrite:
    """POST /contacts/ semantics: by external_id when given (update, restore), else create."""
    data = dict(data)
    identity = data.pop("identity", None)
    external_id = data.pop("external_id", None)
    if isinstance(external_id, str) and external_id.strip():
        return services.contact_upsert(
            agent=agent,
            actor=actor,
            external_id=external_id,
            data=data,
            identity=identity,
            definitions=definitions,
        )
    return services.contact_create(
        agent=agent, actor=actor, data=data, identity=identity, definitions=definitions
    )


LOWERING = (
    "A contact's identity only goes up (anonymous → self-reported → verified): it records how "
    "the person was identified, and the widget trusts it. To stop trusting this contact, "
    "delete it (or erase it); a new one starts from scratch."
)


def refuse_identity_lowering(contact: Contact, body: Any) -> None:
    """A PATCH that would lower the contact's identity or clear its verification is refused
    as a whole (400 `identity_cannot_be_lowered`) instead of half applied."""
    if not isinstance(body, Mapping):
        return  # the serializer explains what a body must be
    problems: dict[str, list[str]] = {}
    wanted = body.get("identity")
    if isinstance(wanted, str) and IDENTITY_RANK.get(wanted, 99) < IDENTITY_RANK[contact.identity]:
        current = contact.identity.replace("_", "-")
        problems["identity"] = [f"This contact is {current}. {LOWERING}"]
    if "verified_at" in body:
        problems["verified_at"] = [
            f"verified_at is set by a verification and cannot be sent or cleared. {LOWERING}"
        ]
    if problems:
        raise ValidationFailed(problems, code="identity_cannot_be_lowered")


def error_of(exc: Exception) -> dict[str, Any]:
    """The `error` object the API would answer for this exception."""
    response = api_exception_handler(exc, {})
    if response is None:
        raise exc
    return response.data["error"]


# --- Contacts ----------------------------------------------------------------------------------


class ContactCollection(APIView):
    @extend_schema(
        operation_id="contacts_list",
        tags=["contacts"],
        summary="List and filter contacts",
        description=LIST_DESCRIPTION,
        parameters=[*LIST_PARAMETERS, SEGMENT],
        responses={
            200: ContactPageSerializer,
            **errors(400, 404, e404="No shared segment with this id for the API key's agent."),
        },
    )
    def get(self, request: Request) -> Response:
        agent = api_agent(request)
        params = request.query_params
        refuse_nul(params)
        refuse_empty_choices(params)
        size = query_page_size(params)
        include_archived = query_flag(params, "include_archived_attributes")
        definitions = attribute_definition_map(agent=agent)
        queryset = contact_queryset(agent=agent, deleted=None)
        if "segment" in params:
            filters = segment_filters(
                segment=shared_segment_or_404(agent, params.get("segment")),
                agent=agent,
                definitions=definitions,
                params=params,
                queryset=queryset,
            )
        else:
            filters = ContactFilterSet(
                params, agent=agent, definitions=definitions, queryset=queryset
            ).validated()
        spec = filters.sort()
        cursor = (params.get("cursor") or "").strip() or None
        try:
            page = keyset_page(filters.qs, spec, cursor=cursor, size=size)
        except InvalidCursor as exc:
            raise serializers.ValidationError({"cursor": [str(exc)]}) from None
        keys = visible_keys(definitions, include_archived=include_archived)
        return Response(
            {
                "results": [contact_to_dict(c, visible_keys=keys) for c in page.items],
                "next": page_url(request, page.next_cursor),
                "previous": page_url(request, page.previous_cursor),
            }
        )

    @extend_schema(
        operation_id="contacts_upsert",
        tags=["contacts"],
        summary="Create a contact, or update it by external_id",
        description=(
            "Without `external_id` (or with a new one) the contact is created: **201**. With an "
            "`external_id` the agent already has, that contact is updated instead — and "
            "restored if it was soft-deleted: **200**. Fields left out keep their values; "
            "`attributes` merge key by key."
        ),
        request=ContactWriteSerializer,
        responses={
            201: OpenApiResponse(ContactSerializer, description="Created."),
            200: OpenApiResponse(ContactSerializer, description="Updated (matched external_id)."),
            **errors(*BODY_ERRORS, 409),
        },
    )
    def post(self, request: Request) -> Response:
        agent = api_agent(request)
        data = validated(ContactWriteSerializer, request.data)
        definitions = attribute_definition_map(agent=agent)
        write = upsert_one(
            agent=agent, actor=api_actor(request), data=data, definitions=definitions
        )
        body = contact_json(agent, write.contact, definitions=definitions)
        return Response(body, status=201 if write.created else 200)


class ContactBulk(APIView):
    @extend_schema(
        operation_id="contacts_bulk_upsert",
        tags=["contacts"],
        summary=f"Create or update up to {MAX_BULK:,} contacts",
        description=(
            "Each item is written like POST /contacts/, on its own: a bad item is reported in "
            "its result (with its `index`) and does not stop the others. The answer is 200 "
            "even when some items failed; count `errors`."
        ),
        request=ContactBulkSerializer,
        responses={200: BulkResultSerializer, **errors(*BODY_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        agent = api_agent(request)
        actor = api_actor(request)
        items = validated(ContactBulkSerializer, request.data)["contacts"]
        definitions = attribute_definition_map(agent=agent)
        results: list[dict[str, Any]] = []
        # One transaction for the call and a savepoint per item (the services' own atomic
        # blocks): a failed item rolls back alone, and 1,000 items cost one commit instead
        # of 1,000 (PostgreSQL, 1,000 new contacts on a busy 2-core machine: 32 s -> 16 s).
        with transaction.atomic():
            for index, item in enumerate(items):
                try:
                    data = validated(ContactWriteSerializer, item)
                    write = upsert_one(agent=agent, actor=actor, data=data, definitions=definitions)
                except (serializers.ValidationError, DomainError) as exc:
                    results.append(
                        {"index": index, "status": "error", "id": None, "error": error_of(exc)}
                    )
                else:
                    results.append(
                        {
                            "index": index,
                            "status": "created" if write.created else "updated",
                            "id": str(write.contact.pk),
                            "error": None,
                        }
                    )
        counts = {"created": 0, "updated": 0, "error": 0}
        for result in results:
            counts[result["status"]] += 1
        return Response(
            {
                "created": counts["created"],
                "updated": counts["updated"],
                "errors": counts["error"],
                "results": results,
            }
        )


class ContactEnsure(APIView):
    @extend_schema(
        operation_id="contacts_ensure",
        tags=["contacts"],
        summary="Get or create a contact, idempotently",
        description=(
            "With `fingerprint` (a trusted id of yours): the verified contact whose external_id "
            "it is, created if missing. Without: an unverified (self-reported) contact keyed by "
            "the normalized email, else phone, else name — never a verified contact. An "
            "existing contact only has its blank fields filled. 201 when created, else 200."
        ),
        request=ContactEnsureSerializer,
        responses={
            201: OpenApiResponse(EnsureResultSerializer, description="Created."),
            200: OpenApiResponse(EnsureResultSerializer, description="Already there."),
            **errors(*BODY_ERRORS),
        },
    )
    def post(self, request: Request) -> Response:
        agent = api_agent(request)
        data = validated(ContactEnsureSerializer, request.data)
        fingerprint = data.pop("fingerprint", None)
        if isinstance(fingerprint, str) and not fingerprint.strip():
            fingerprint = None
        write = services.contact_ensure(
            agent=agent, actor=api_actor(request), data=data, fingerprint=fingerprint
        )
        contact = write.contact
        body = {
            "id": str(contact.pk),
            "created": write.created,
            "verified": contact.identity == Identity.VERIFIED,
        }
        return Response(body, status=201 if write.created else 200)


class ContactMerge(APIView):
    @extend_schema(
        operation_id="contacts_merge",
        tags=["contacts"],
        summary="Merge one contact into another",
        description=(
            "Conversations, tags and Stripe accounts move to the primary; the primary's values "
            "win and the secondary fills its blanks; the secondary is removed. Refused (409) "
            "when both have different external ids, or the primary is deleted."
        ),
        request=ContactMergeSerializer,
        responses={
            200: OpenApiResponse(ContactSerializer, description="The merged primary contact."),
            **errors(*BODY_ERRORS, 404, 409),
        },
    )
    def post(self, request: Request) -> Response:
        agent = api_agent(request)
        data = validated(ContactMergeSerializer, request.data)
        primary = contact_or_404(agent, data["primary"], role="primary")
        secondary = contact_or_404(agent, data["secondary"], role="secondary")
        write = services.contact_merge(
            primary=primary, secondary=secondary, actor=api_actor(request)
        )
        return Response(contact_json(agent, write.contact))


class ContactDetail(APIView):
    @extend_schema(
        operation_id="contacts_retrieve",
        tags=["contacts"],
        summary="Fetch a contact",
        description="Soft-deleted contacts are returned too, with `deleted_at` set.",
        parameters=[CONTACT_ID, INCLUDE_ARCHIVED],
        responses={200: ContactSerializer, **errors(400, 404)},
    )
    def get(self, request: Request, contact_id: uuid.UUID) -> Response:
        agent = api_agent(request)
        include_archived = query_flag(request.query_params, "include_archived_attributes")
        contact = contact_or_404(agent, contact_id)
        definitions = attribute_definition_map(agent=agent)
        keys = visible_keys(definitions, include_archived=include_archived)
        return Response(contact_to_dict(contact, visible_keys=keys))

    @extend_schema(
        operation_id="contacts_update",
        tags=["contacts"],
        summary="Change some fields of a contact",
        description=(
            "Only the fields sent change. `attributes` merge key by key and `null` clears a "
            "key; `tags` and `stripe_accounts` replace the whole set. `external_id` can be set "
            "once and never changed (merge instead). `identity` can only go up (anonymous → "
            "self-reported → verified): asking for a lower level than the contact has, or "
            "sending `verified_at` at all, answers 400 `identity_cannot_be_lowered` and "
            "changes nothing. Sending the level it already has is accepted."
        ),
        parameters=[CONTACT_ID],
        request=ContactPatchSerializer,
        responses={
            200: ContactSerializer,
            **errors(
                *BODY_ERRORS,
                404,
                409,
                e400=(
                    "Invalid JSON or field values (`validation_error`), or a request to lower "
                    "the contact's identity or clear `verified_at` "
                    "(`identity_cannot_be_lowered`)."
                ),
                e409="Another contact already has this external_id.",
            ),
        },
    )
    def patch(self, request: Request, contact_id: uuid.UUID) -> Response:
        agent = api_agent(request)
        contact = contact_or_404(agent, contact_id)
        refuse_identity_lowering(contact, request.data)
        data = validated(ContactPatchSerializer, request.data)
        identity = data.pop("identity", None)
        definitions = attribute_definition_map(agent=agent)
        write = services.contact_update(
            contact=contact,
            actor=api_actor(request),
            data=data,
            identity=identity,
            definitions=definitions,
        )
        return Response(contact_json(agent, write.contact, definitions=definitions))

    @extend_schema(
        operation_id="contacts_delete",
        tags=["contacts"],
        summary="Soft-delete a contact",
        description=(
            "Hides the contact (its conversations stay); POST …/restore/ undoes it. An upsert "
            "with its external_id restores it too. For GDPR erasure use POST …/erase/."
        ),
        parameters=[CONTACT_ID],
        responses={204: OpenApiResponse(description="Deleted."), **errors(404)},
    )
    def delete(self, request: Request, contact_id: uuid.UUID) -> Response:
        agent = api_agent(request)
        contact = contact_or_404(agent, contact_id)
        services.contact_soft_delete(contact=contact, actor=api_actor(request))
        return Response(status=204)


class ContactRestore(APIView):
    @extend_schema(
        operation_id="contacts_restore",
        tags=["contacts"],
        summary="Undo a soft delete",
        parameters=[CONTACT_ID],
        request=None,
        responses={200: ContactSerializer, **errors(404)},
    )
    def post(self, request: Request, contact_id: uuid.UUID) -> Response:
        agent = api_agent(request)
        contact = contact_or_404(agent, contact_id)
        restored = services.contact_restore(contact=contact, actor=api_actor(request))
        return Response(contact_json(agent, restored))


class ContactErase(APIView):
    @extend_schema(
        operation_id="contacts_erase",
        tags=["contacts"],
        summary="Erase a contact for good (GDPR)",
        description=(
            "Deletes the contact with its attributes, tag links and Stripe links, and "
            "anonymizes its conversation transcripts (its name, email and phone are replaced "
            "in message bodies). Only a record that an erasure happened is kept. Cannot be "
            "undone."
        ),
        parameters=[CONTACT_ID],
        request=None,
        responses={204: OpenApiResponse(description="Erased."), **errors(404)},
    )
    def post(self, request: Request, contact_id: uuid.UUID) -> Response:
        agent = api_agent(request)
        contact = contact_or_404(agent, contact_id)
        services.contact_erase(contact=contact, actor=api_actor(request))
        return Response(status=204)


class ContactTags(APIView):
    @extend_schema(
        operation_id="contacts_tags_add",
        tags=["tags"],
        summary="Add tags to a contact",
        description="Tags the contact already has are left as they are.",
        parameters=[CONTACT_ID],
        request=TagNamesSerializer,
        responses={200: ContactSerializer, **errors(*BODY_ERRORS, 404)},
    )
    def post(self, request: Request, contact_id: uuid.UUID) -> Response:
        agent = api_agent(request)
        contact = contact_or_404(agent, contact_id)
        names = validated(TagNamesSerializer, request.data)["tags"]
        write = services.contact_tags_add(contact=contact, actor=api_actor(request), names=names)
        return Response(contact_json(agent, write.contact))


class ContactTag(APIView):
    @extend_schema(
        operation_id="contacts_tags_remove",
        tags=["tags"],
        summary="Remove one tag from a contact",
        description="Matched ignoring case. Removing a tag the contact does not have is a no-op.",
        parameters=[
            CONTACT_ID,
            OpenApiParameter(
                "tag",
                {"type": "string", "minLength": 1},
                OpenApiParameter.PATH,
                description="The tag's name (URL-encoded).",
            ),
        ],
        responses={204: OpenApiResponse(description="Removed."), **errors(400, 404)},
    )
    def delete(self, request: Request, contact_id: uuid.UUID, tag: str) -> Response:
        agent = api_agent(request)
        contact = contact_or_404(agent, contact_id)
        services.contact_tags_remove(contact=contact, actor=api_actor(request), names=[tag])
        return Response(status=204)


# --- Tags --------------------------------------------------------------------------------------


class TagCollection(APIView):
    @extend_schema(
        operation_id="tags_list",
        tags=["tags"],
        summary="The agent's tags, with how many contacts carry each",
        responses={200: TagListSerializer},
    )
    def get(self, request: Request) -> Response:
        agent = api_agent(request)
        tags = tags_with_counts(agent=agent)
        return Response(
            {"results": [{"name": t.name, "contact_count": t.contact_count} for t in tags]}
        )


# --- Segments ----------------------------------------------------------------------------------


class SegmentCollection(APIView):
    @extend_schema(
        operation_id="segments_list",
        tags=["segments"],
        summary="The agent's shared segments",
        description=(
            "Segments are views of the contacts table saved by the team, by name. The API "
            "key sees the shared ones (a person's private segments stay theirs). List a "
            "segment's contacts with GET /api/v1/contacts/?segment=<id>; `query` is the same "
            "view as list parameters."
        ),
        parameters=[
            OpenApiParameter(
                "include_counts",
                OpenApiTypes.BOOL,
                description=(
                    "Also say how many contacts each segment holds now (exact up to 10,000, "
                    "an estimate above; costs a count per segment)."
                ),
            )
        ],
        responses={200: SegmentListSerializer, **errors(400)},
    )
    def get(self, request: Request) -> Response:
        agent = api_agent(request)
        with_counts = query_flag(request.query_params, "include_counts")
        definitions = attribute_definition_map(agent=agent) if with_counts else {}
        results = []
        for segment in segments_shared(agent=agent):
            item: dict[str, Any] = {
                "id": segment.pk,
                "name": segment.name,
                "query": segment.query,
                "created_at": iso(segment.created_at),
                "updated_at": iso(segment.updated_at),
            }
            if with_counts:
                filters, _ = ContactFilterSet(
                    segment_params(segment), agent=agent, definitions=definitions
                ).lenient()
                count, exact = table_count(qs=filters.qs, filters=filters, agent=agent)
                item.update(contact_count=count, contact_count_exact=exact)
            results.append(item)
        return Response({"results": results})
