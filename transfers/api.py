"""REST API v1: imports (the dashboard's engine, as background jobs) and streamed exports."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attributes.selectors import attribute_definitions
from contacts.api import LIST_PARAMETERS, refuse_empty_choices
from contacts.query.filterset import ContactFilterSet
from contacts.selectors import contact_queryset
from contacts.serializers import ContactSerializer
from core.api.fields import StrictBooleanField, StrictSerializer
from core.api.json_io import PayloadTooLarge
from core.api.request import query_flag, refuse_nul, validated
from core.api.schema import errors
from core.errors import DomainError
from core.times import iso
from transfers import services
from transfers.exports.stream import EXPORT_FORMATS, export_response
from transfers.models import ContactImport
from transfers.selectors import import_get, import_issues
from workspaces.api import api_agent

MAX_ERRORS_SHOWN = 1000

# --- Shapes ----------------------------------------------------------------------------------


class ImportProblemSerializer(serializers.Serializer):
    column = serializers.CharField(help_text="The file's column, or empty for the whole row.")
    value = serializers.CharField(help_text="The value as read (first 200 characters).")
    message = serializers.CharField()


class ImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(
        help_text="Row number as in the file: CSV counts the header as row 1, JSON Lines "
        "counts lines, JSON counts array items."
    )
    kind = serializers.ChoiceField(
        choices=["error", "skipped"],
        help_text="error: not written; skipped: a later row of the file has the same contact.",
    )
    problems = ImportProblemSerializer(many=True)


class ImportCountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()


class ImportProgressSerializer(serializers.Serializer):
    total_rows = serializers.IntegerField(allow_null=True, help_text="Known after the first pass.")
    processed_rows = serializers.IntegerField()
    percent = serializers.IntegerField(min_value=0, max_value=100)


class ImportFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    format = serializers.ChoiceField(choices=["csv", "json", "jsonl"])
    size = serializers.IntegerField()
    columns = serializers.ListField(child=serializers.CharField())


class ImportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ContactImport.Status.values)
    dry_run = serializers.BooleanField()
    file = ImportFileSerializer()
    mapping = serializers.DictField(
        child=serializers.CharField(),
        help_text="Column -> target: a core field, tags, stripe_*, attr:<key>, or ignore.",
    )
    new_attributes = serializers.DictField(child=serializers.CharField())
    progress = ImportProgressSerializer()
    counts = ImportCountsSerializer()
    error = serializers.CharField(help_text="Why the job failed (empty otherwise).")
    errors = ImportRowErrorSerializer(many=True, help_text="The first 1,000 rows not written.")
    errors_truncated = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


@extend_schema_field({"type": "string", "format": "json"})
class JsonObjectField(serializers.Field):
    """A JSON object sent as a multipart form field (text)."""

    default_error_messages = {"invalid": "Must be a JSON object of strings."}

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if isinstance(data, str):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                self.fail("invalid")
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            self.fail("invalid")
        return data


class FormBooleanField(StrictBooleanField):
    """A boolean sent as a multipart form field: the text true or false."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, str) and data.strip().lower() in ("true", "false"):
            return data.strip().lower() == "true"
        return super().to_internal_value(data)


class ImportCreateSerializer(StrictSerializer):
    file = serializers.FileField(help_text="CSV, JSON (an array of objects) or JSON Lines.")
    dry_run = FormBooleanField(
        required=False, default=False, help_text="Validate and report per row; write nothing."
    )
    format = serializers.ChoiceField(
        choices=["csv", "json", "jsonl"],
        required=False,
        help_text="Default: from the file name, else from its first character.",
    )
    mapping = JsonObjectField(
        required=False,
        help_text='JSON object {"column": "target"} over the automatic mapping; targets are '
        "external_id, name, first_name, last_name, email, phone, avatar_url, company, id, tags, "
        "stripe_accounts, stripe_id, stripe_email, stripe_label, attr:<key>, new:<key>, ignore.",
    )
    new_attributes = JsonObjectField(
        required=False, help_text='JSON object {"key": "type"} for new:<key> targets.'
    )
    unknown_columns = serializers.ChoiceField(
        choices=["ignore", "create"],
        required=False,
        default="ignore",
        help_text="Columns that match nothing: ignored, or new attributes (type inferred).",
    )


class ImportStartSerializer(StrictSerializer):
    dry_run = StrictBooleanField(required=False, default=False)


def import_json(job: ContactImport) -> dict[str, Any]:
    issues = import_issues(job=job, limit=MAX_ERRORS_SHOWN)
    return {
        "id": str(job.pk),
        "status": job.status,
        "dry_run": job.dry_run,
        "file": {
            "name": job.filename,
            "format": job.file_format,
            "size": job.size,
            "columns": job.columns,
        },
        "mapping": job.mapping,
        "new_attributes": job.new_attributes,
        "progress": {
            "total_rows": job.total_rows,
            "processed_rows": job.processed_rows,
            "percent": job.progress_percent,
        },
        "counts": {
            "created": job.created_count,
            "updated": job.updated_count,
            "unchanged": job.unchanged_count,
            "failed": job.failed_count,
            "skipped": job.skipped_count,
        },
        "error": job.error,
        "errors": [{"row": i.row_number, "kind": i.kind, "problems": i.problems} for i in issues],
        "errors_truncated": job.failed_count + job.skipped_count > len(issues),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


IMPORT_ID = OpenApiParameter(
    "import_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The import's id."
)


class LimitedMultiPartParser(MultiPartParser):
    """Multipart uploads up to IMPORT_MAX_BYTES; a larger declared body is a 413 at once."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.IMPORT_MAX_BYTES
        if request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except (TypeError, ValueError):
                declared = 0
            # The multipart envelope adds a little to the file itself.
            if declared > limit + 64 * 1024:
                raise PayloadTooLarge(
                    f"The file is larger than {limit:,} bytes (IMPORT_MAX_BYTES); split it."
                )
        return super().parse(stream, media_type, parser_context)


def _job_or_404(request: Request, import_id: uuid.UUID) -> ContactImport:
    try:
        return import_get(agent=api_agent(request), import_id=import_id)
    except ContactImport.DoesNotExist:
        from rest_framework.exceptions import NotFound

        raise NotFound("No import with this id for the API key's agent.") from None


class ImportCollection(APIView):
    parser_classes = [LimitedMultiPartParser]

    @extend_schema(
        operation_id="imports_create",
        tags=["imports"],
        summary="Import a file of contacts (background job)",
        description=(
            "Upload a CSV, JSON or JSON Lines file as `multipart/form-data`. Columns are "
            "mapped automatically by name (core fields and their usual synonyms, attribute keys "
            "and labels, `tags`, Stripe fields); `mapping` adjusts it. The job runs in the "
            "background: poll `GET /api/v1/imports/{id}/`. With `dry_run=true` every row is "
            "validated and reported and nothing is written; `POST /api/v1/imports/{id}/start/` "
            "then imports the same file. Rows are matched by external ID, else by the one "
            "contact with the same email (else phone), else created; blank cells change nothing; "
            "re-importing the same file changes nothing."
        ),
        request={"multipart/form-data": ImportCreateSerializer},
        responses={
            202: OpenApiResponse(ImportSerializer, description="Accepted: the job is queued."),
            **errors(400, 413, 415),
        },
    )
    def post(self, request: Request) -> Response:
        agent = api_agent(request)
        data = validated(ImportCreateSerializer, request.data)
        job = services.import_create(
            agent=agent,
            upload=data["file"],
            actor_label=f"import via {request.user}",
            file_format=data.get("format", ""),
            mapping=data.get("mapping"),
            new_attributes=data.get("new_attributes"),
            create_unknown=data["unknown_columns"] == "create",
        )
        try:
            job = services.import_start(job=job, dry_run=data["dry_run"])
        except DomainError:
            # The client never learns this job's id: keep neither it nor the file.
            services.import_delete(job=job)
            raise
        return Response(import_json(job), status=202)


class ImportDetail(APIView):
    @extend_schema(
        operation_id="imports_retrieve",
        tags=["imports"],
        summary="An import's status, progress, counts and row errors",
        parameters=[IMPORT_ID],
        responses={200: ImportSerializer, **errors(404)},
    )
    def get(self, request: Request, import_id: uuid.UUID) -> Response:
        return Response(import_json(_job_or_404(request, import_id)))


class ImportStart(APIView):
    @extend_schema(
        operation_id="imports_start",
        tags=["imports"],
        summary="Run an import again: for real after a dry run, another dry run, or resume it",
        description=(
            "Queues the job from its first row: the real import after a dry run, or another "
            "dry run. A job whose worker stopped (running or queued with no progress for "
            "IMPORT_STALE_SECONDS, 5 minutes by default) is resumed instead when `dry_run` "
            "is the job's own: an import goes on after its last saved batch, without writing "
            "any row twice, and a dry run starts over. Task workers resume such jobs by "
            "themselves too."
        ),
        parameters=[IMPORT_ID],
        request=ImportStartSerializer,
        responses={
            202: OpenApiResponse(
                ImportSerializer, description="Accepted: the job is queued (or resumed)."
            ),
            **errors(
                400,
                404,
                409,
                413,
                415,
                e409="The job is queued or running (and its worker is alive), or this file "
                "is already imported.",
            ),
        },
    )
    def post(self, request: Request, import_id: uuid.UUID) -> Response:
        job = _job_or_404(request, import_id)
        data = validated(ImportStartSerializer, request.data)
        if services.import_is_stalled(job) and data["dry_run"] == job.dry_run:
            job = services.import_resume(job=job)
        else:
            job = services.import_start(job=job, dry_run=data["dry_run"])
        return Response(import_json(job), status=202)


class _AnyFormat(DefaultContentNegotiation):
    """`format` here names the export's file format, not a DRF renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ContactExport(APIView):
    content_negotiation_class = _AnyFormat

    @extend_schema(
        operation_id="contacts_export",
        tags=["contacts"],
        summary="Export contacts (streamed)",
        description=(
            "Every contact matching the list filters, streamed in constant memory. CSV has one "
            "column per core field, `tags` (comma-separated), one column per live attribute "
            "(by key) and `stripe_accounts` as YAML text; cells starting with =, +, -, @, tab "
            "or CR get a leading apostrophe against spreadsheet formula injection. JSON is an "
            "array of contacts, JSON Lines one contact per line."
        ),
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(EXPORT_FORMATS), description="csv (default), json, jsonl"
            ),
            *[p for p in LIST_PARAMETERS if p.name not in ("cursor", "page_size", "ordering")],
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            (200, "application/json"): OpenApiResponse(ContactSerializer(many=True)),
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="One contact JSON per line."
            ),
            **errors(400),
        },
    )
    def get(self, request: Request):
        agent = api_agent(request)
        params = request.query_params
        refuse_nul(params)
        refuse_empty_choices(params)
        file_format = params.get("format", "csv")
        if file_format not in EXPORT_FORMATS:
            raise serializers.ValidationError({"format": ["Use csv, json or jsonl."]})
        include_archived = query_flag(params, "include_archived_attributes")
        definitions = attribute_definitions(agent=agent, include_archived=True)
        filters = ContactFilterSet(
            params,
            agent=agent,
            definitions={d.key: d for d in definitions},
            queryset=contact_queryset(agent=agent, deleted=None),
        ).validated()
        if not include_archived:
            definitions = [d for d in definitions if not d.archived]
        qs = filters.qs
        return export_response(qs, agent=agent, file_format=file_format, definitions=definitions)
