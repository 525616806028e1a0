"""The one contact filter language, as a django-filter FilterSet: the dashboard table, the
API list and exports all read their parameters through `ContactFilterSet`.

Core filters are declared: `q`, `tag` (repeatable, all must match), `identity`
(repeatable or comma-separated), `created_/updated_/last_seen_after|before`, `seen`,
`deleted` and `ordering` (validated here, applied by the keyset pager). Conditions
(`attr.<key>[__<op>]`, `<field>[__<op>]`, see contacts.query.conditions) are built per
request for the parameters it names, each parsing its value by the attribute's type or the
field's kind; `match=any` makes any one of them enough (every other filter still applies).

Every bad parameter gets a message of its own; `ContactFilterSet.validated()` raises them
all at once as a ValidationFailed (400 on the API, notes beside the table).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Lower
from django.http import QueryDict
from django.utils import timezone

from attributes.coercion import AttributeValueError
from attributes.models import AttributeDefinition
from contacts.models import Contact, ContactTag, Identity, Tag
from contacts.query.conditions import (
    MAX_CONDITIONS,
    Target,
    combine,
    condition_q,
    is_condition_param,
    parse_moment,
    parse_operand,
    resolve,
)
from contacts.query.expressions import search
from contacts.query.keyset import DEFAULT_ORDERING, SortSpec, sort_for
from core.errors import ValidationFailed
from workspaces.models import Agent

DATE_RANGE_FIELDS = ("created", "updated", "last_seen")
# Dashboard "last seen" windows.
SEEN_WINDOWS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
SEEN_CHOICES = (*SEEN_WINDOWS, "over90d", "never")
MAX_SEARCH = 200
MATCH_CHOICES = ("all", "any")


# --- Form fields: one message per bad value ---------------------------------------------------


class _ListField(forms.Field):
    """Every value of a repeatable parameter (`?tag=a&tag=b`), blanks dropped."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        values = value if isinstance(value, (list, tuple)) else [] if value is None else [value]
        return [str(v).strip() for v in values if str(v).strip()]


class _IdentityField(_ListField):
    def to_python(self, value: Any) -> list[str]:
        levels: list[str] = []
        for part in (p.strip() for v in super().to_python(value) for p in v.split(",")):
            if not part:
                continue
            if part not in Identity.values:
                raise forms.ValidationError(
                    f"{part!r} is not an identity level; use {', '.join(Identity.values)}."
                )
            if part not in levels:
                levels.append(part)
        return levels


class _MomentField(forms.Field):
    """A date or date-time; `end_of_day` makes a bare date mean its last microsecond."""

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> datetime | None:
        text = str(value or "").strip()
        if not text:
            return None
        moment = parse_moment(text, end_of_day=self.end_of_day)
        if moment is None:
            raise forms.ValidationError(
                f"{text!r} is not a date or datetime; use ISO 8601 such as 2024-03-31."
            )
        return moment


class _SeenField(forms.Field):
    def to_python(self, value: Any) -> str:
        text = str(value or "").strip()
        if text and text not in SEEN_CHOICES:
            raise forms.ValidationError(f"Use one of {', '.join(SEEN_CHOICES)}.")
        return text


class _DeletedField(forms.Field):
    """`deleted=true` lists soft-deleted contacts; absent or false, the live ones."""

    def to_python(self, value: Any) -> bool:
        text = str(value or "").strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("", "false", "0", "no"):
            return False
        raise forms.ValidationError("Use deleted=true or deleted=false.")


class _OrderingField(forms.Field):
    def __init__(self, *, definitions: Mapping[str, AttributeDefinition], **kwargs: Any):
        self.definitions = definitions
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        text = str(value or "").strip()
        if text:
            try:
                sort_for(text, self.definitions)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return text


class _MatchField(forms.Field):
    """`match=all` (every condition must hold, the default) or `match=any`."""

    def to_python(self, value: Any) -> str:
        text = str(value or "").strip().lower()
        if text and text not in MATCH_CHOICES:
            raise forms.ValidationError("Use match=all or match=any.")
        return text or "all"


class _ConditionValuesField(_ListField):
    """The values of one condition parameter, each parsed by the target's kind."""

    def __init__(self, *, target: Target, op: str, region: str, **kwargs: Any) -> None:
        self.target, self.op, self.region = target, op, region
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[Any]:
        try:
            return [
                parse_operand(self.target, self.op, raw, region=self.region)
                for raw in super().to_python(value)
            ]
        except (AttributeValueError, ValueError) as exc:
            raise forms.ValidationError(str(exc)) from None


# --- Filters -------------------------------------------------------------------------------------


class _FieldFilter(django_filters.Filter):
    """A filter whose form field is built with extra arguments (the attribute, the schema)."""

    def __init__(self, *args: Any, field_class: type[forms.Field], **kwargs: Any) -> None:
        self.field_class = field_class
        kwargs.setdefault("label", "")
        super().__init__(*args, **kwargs)


class _ConditionFilter(django_filters.Filter):
    """One condition parameter; ContactFilterSet.filter_queryset combines them all."""

    def __init__(self, *, target: Target, op: str, region: str) -> None:
        self.target, self.op = target, op
        super().__init__(label=target.label, target=target, op=op, region=region)
        self.field_class = _ConditionValuesField


class ContactFilterSet(django_filters.FilterSet):
    """The contact filters of one agent; `queryset` is that agent's contacts."""

    deleted = _FieldFilter(field_class=_DeletedField, method="filter_deleted")
    q = django_filters.CharFilter(label="Search", method="filter_search")
    tag = _FieldFilter(field_class=_ListField, method="filter_tags")
    identity = _FieldFilter(field_name="identity", lookup_expr="in", field_class=_IdentityField)
    created_after = _FieldFilter("created_at", "gte", field_class=_MomentField)
    created_before = _FieldFilter("created_at", "lte", field_class=_MomentField, end_of_day=True)
    updated_after = _FieldFilter("updated_at", "gte", field_class=_MomentField)
    updated_before = _FieldFilter("updated_at", "lte", field_class=_MomentField, end_of_day=True)
    last_seen_after = _FieldFilter("last_seen_at", "gte", field_class=_MomentField)
    last_seen_before = _FieldFilter(
        "last_seen_at", "lte", field_class=_MomentField, end_of_day=True
    )
    seen = _FieldFilter(field_class=_SeenField, method="filter_seen")
    match = _FieldFilter(field_class=_MatchField, method="filter_nothing")
    # Validated against the schema here; the keyset pager applies it (see `sort`).
    ordering = _FieldFilter(field_class=_OrderingField, method="filter_nothing")

    def __init__(
        self,
        data: Mapping[str, Any] | None,
        *,
        agent: Agent,
        definitions: Mapping[str, AttributeDefinition],
        queryset: QuerySet[Contact] | None = None,
    ) -> None:
        if data is not None and not hasattr(data, "getlist"):
            data = _as_querydict(data)
        queryset = queryset if queryset is not None else Contact.objects.filter(agent=agent)
        super().__init__(data if data is not None else QueryDict(), queryset)
        self.agent, self.definitions = agent, definitions
        self.filters["ordering"].extra["definitions"] = definitions
        self.unknown: dict[str, list[str]] = {}
        # The conditions this request names, built from the agent's schema.
        region = agent.default_phone_region or "US"
        count = 0
        for name in map(str, self.data):
            if not is_condition_param(name):
                continue
            try:
                target, op = resolve(name, definitions)
            except ValueError as exc:
                self.unknown[name] = [str(exc)]
                continue
            count += len(self.data.getlist(name))
            if count > MAX_CONDITIONS:
                self.unknown[name] = [f"At most {MAX_CONDITIONS} conditions at a time."]
                continue
            condition = _ConditionFilter(target=target, op=op, region=region)
            condition.model, condition.parent = Contact, self
            self.filters[name] = condition

    # --- Reading the request ---

    @property
    def all_errors(self) -> dict[str, list[str]]:
        """Every parameter that is wrong, with what is wrong with it."""
        errors = {name: list(messages) for name, messages in self.form.errors.items()}
        return {**errors, **self.unknown}

    def validated(self) -> ContactFilterSet:
        """Self, when every parameter is right; ValidationFailed naming each one otherwise."""
        errors = self.all_errors
        if errors:
            raise ValidationFailed(errors)
        return self

    def lenient(self) -> tuple[ContactFilterSet, dict[str, list[str]]]:
        """A filter set without the wrong parameters, and what was wrong with them (the
        table shows the rest of the state and says what it left out)."""
        errors = self.all_errors
        if not errors:
            return self, {}
        cleaned = self.data.copy()
        for name in errors:
            cleaned.pop(name, None)
        again = ContactFilterSet(
            cleaned, agent=self.agent, definitions=self.definitions, queryset=self.queryset
        )
        return again, errors

    def value(self, name: str) -> Any:
        return self.form.cleaned_data.get(name) if self.form.is_valid() else None

    @property
    def tags(self) -> list[str]:
        return self.value("tag") or []

    @property
    def search_text(self) -> str:
        return " ".join((self.value("q") or "").split())[:MAX_SEARCH]

    @property
    def deleted_view(self) -> bool:
        return bool(self.value("deleted"))

    @property
    def seen_window(self) -> str:
        return self.value("seen") or ""

    @property
    def is_filtered(self) -> bool:
        """Narrowed by anything besides the deleted view and the order."""
        return any(
            self.value(name) not in (None, "", [], False)
            for name in self.filters
            if name not in ("deleted", "ordering", "match")
        )

    @property
    def only_tags(self) -> bool:
        """Narrowed by tags and nothing else (the table can count that from the links)."""
        others = [n for n in self.filters if n not in ("deleted", "ordering", "tag", "match")]
        return bool(self.tags) and not any(self.value(n) not in (None, "", []) for n in others)

    @property
    def only_attribute_conditions(self) -> bool:
        """Narrowed by attribute conditions and nothing else, all of them to hold (the
        table counts that along one attribute index, see `table_count`)."""
        named = [
            n
            for n in self.filters
            if n not in ("deleted", "ordering", "match") and self.value(n) not in (None, "", [])
        ]
        return (
            bool(named)
            and not self.match_any
            and all(
                isinstance(self.filters[n], _ConditionFilter)
                and self.filters[n].target.definition is not None
                for n in named
            )
        )

    @property
    def filtered_attributes(self) -> list[AttributeDefinition]:
        """The attributes the conditions in use compare (their indexes answer them)."""
        found = {}
        for name, condition in self.filters.items():
            if not isinstance(condition, _ConditionFilter) or condition.target.definition is None:
                continue
            if self.value(name) not in (None, "", []):
                found[condition.target.definition.key] = condition.target.definition
        return list(found.values())

    @property
    def match_any(self) -> bool:
        return self.value("match") == "any"

    @property
    def condition_names(self) -> list[str]:
        """The condition parameters in effect, in the order given."""
        return [n for n, f in self.filters.items() if isinstance(f, _ConditionFilter)]

    def sort(self, *, default: str = DEFAULT_ORDERING) -> SortSpec:
        return sort_for(self.value("ordering") or default, self.definitions)

    # --- Filter methods ---

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """Every filter in turn, then the conditions: all of them, or any one."""
        conditions: list[tuple[_ConditionFilter, list[Any]]] = []
        for name, value in self.form.cleaned_data.items():
            found = self.filters[name]
            if isinstance(found, _ConditionFilter):
                conditions.append((found, value or []))
            else:
                queryset = found.filter(queryset, value)
        if not any(operands for _, operands in conditions):
            return queryset
        tag_names = {
            operand
            for found, operands in conditions
            if found.target.kind == "tag" and found.op != "exists"
            for operand in operands
        }
        tag_ids = self._tag_ids(tag_names)
        predicates = [
            condition_q(found.target, found.op, operand, tag_ids=tag_ids)
            for found, operands in conditions
            for operand in operands
        ]
        return queryset.filter(combine(predicates, any_of=self.match_any))

    def _tag_ids(self, names: set[str]) -> dict[str, list[int]]:
        """The agent's tag ids by lower-cased name, as literals (see filter_tags)."""
        found: dict[str, list[int]] = {}
        if names:
            for tag_name, pk in (
                Tag.objects.alias(lname=Lower("name"))
                .filter(agent=self.agent, lname__in=names)
                .values_list("name", "pk")
            ):
                found.setdefault(tag_name.lower(), []).append(pk)
        return found

    def filter_deleted(self, qs: QuerySet, name: str, value: bool) -> QuerySet:
        return qs.filter(deleted_at__isnull=not value)

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        text = " ".join(value.split())[:MAX_SEARCH]
        return search(qs, text, agent=self.agent) if text else qs

    def filter_tags(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        # Resolve tag ids first (one small query) and filter by literal ids: the planner then
        # reads how common the tag is from contacttag's statistics. Behind a subquery it
        # assumes an average tag and, for a popular one, fetches every tagged contact before
        # sorting (1.7 s for a tag on 58,000 of a million contacts) instead of walking the
        # sort index until a page is full (a few ms).
        wanted = {tag.lower() for tag in value}
        found: dict[str, list[int]] = {}
        for tag_name, pk in (
            Tag.objects.alias(lname=Lower("name"))
            .filter(agent=self.agent, lname__in=wanted)
            .values_list("name", "pk")
        ):
            found.setdefault(tag_name.lower(), []).append(pk)
        for tag in value:
            tag_ids = found.get(tag.lower())
            if not tag_ids:
                return qs.none()
            qs = qs.filter(
                Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id__in=tag_ids))
            )
        return qs

    def filter_seen(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        now = timezone.now()
        if value == "never":
            return qs.filter(last_seen_at__isnull=True)
        if value == "over90d":
            return qs.filter(last_seen_at__lt=now - SEEN_WINDOWS["90d"])
        return qs.filter(last_seen_at__gte=now - SEEN_WINDOWS[value])

    def filter_nothing(self, qs: QuerySet, name: str, value: Any) -> QuerySet:
        return qs


def _as_querydict(data: Mapping[str, Any]) -> QueryDict:
    params = QueryDict(mutable=True)
    for key, value in data.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        params.setlist(key, [str(v) for v in values])
    return params
