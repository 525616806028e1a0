"""Server time of the contacts table on a real agent (docs/PERFORMANCE.md, "Contacts table").

Each scenario is a GET of the table through Django's full request path (middleware, access
checks, the query layer, template rendering) in this process, so the time is what the
server spends on the page: no network, no browser. Run it against the seeded PostgreSQL
database; it reads only (it signs one member in, which writes a session row).
"""

from __future__ import annotations

import statistics
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contacts.models import Contact
from workspaces.models import Agent, Membership

SCENARIOS = [
    ("default page (newest first, 50 rows)", {}),
    ("sort by email", {"ordering": "email"}),
    ("search for a 4-letter substring", {"q": "{search}"}),
]
EXTRA_SCENARIOS = [
    ("sort by email, descending", {"ordering": "-email"}),
    ("sort by last seen", {"ordering": "-last_seen_at"}),
    ("search, sorted by name", {"q": "{search}", "ordering": "name"}),
    ("sort by an attribute (first number attribute)", {"ordering": "-attr.{number_key}"}),
    ("filter by tag", {"tag": "vip"}),
    ("verified, seen in the last 30 days", {"identity": "verified", "seen": "30d"}),
    ("250 rows, 8 attribute columns", {"per_page": "250", "cols": "{all_columns}"}),
]


class Command(BaseCommand):
    help = "Time the contacts table (default page, sort by email, substring search) in ms."

    def add_arguments(self, parser):
        parser.add_argument("--agent-public-id", help="Defaults to the agent with most contacts.")
        parser.add_argument("--user", help="Email of a member of the agent's workspace.")
        parser.add_argument("--repeat", type=int, default=15)
        parser.add_argument("--search", default="mart", help="The substring to search for.")
        parser.add_argument("--budget-ms", type=float, default=300.0)
        parser.add_argument("--all", action="store_true", help="Also time more scenarios.")

    def handle(self, *args, **options):
        agent = self._agent(options.get("agent_public_id"))
        user = self._user(agent, options.get("user"))
        host = "testserver" if "testserver" in settings.ALLOWED_HOSTS else settings.ALLOWED_HOSTS[0]
        client = Client(HTTP_HOST=host, raise_request_exception=True)
        client.force_login(user)
        base = reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})
        keys = ["email", "identity", "tags", "last_seen_at"] + [
            f"attr.{k}"
            for k in agent.attribute_definitions.filter(archived=False)
            .order_by("position")
            .values_list("key", flat=True)[:8]
        ]
        number_key = (
            agent.attribute_definitions.filter(archived=False, type="number")
            .order_by("position")
            .values_list("key", flat=True)
            .first()
        )
        fill = {
            "search": options["search"],
            "all_columns": ",".join(keys),
            "number_key": number_key or "missing",
        }
        scenarios = SCENARIOS + (EXTRA_SCENARIOS if options["all"] else [])
        live = Contact.objects.filter(agent=agent, deleted_at__isnull=True).count()
        self.stdout.write(
            f"{connection.vendor}, agent {agent.public_id} with {live:,} live contacts, "
            f"{options['repeat']} runs each after 2 warm-up runs (server time, ms)\n"
        )
        self.stdout.write(f"{'scenario':46} {'median':>7} {'p95':>7} {'max':>7} {'queries':>7}")
        over = []
        for label, params in scenarios:
            query = {k: v.format(**fill) for k, v in params.items()}
            url = base + ("?" + urlencode(query) if query else "")
            timings, queries = self._time(client, url, options["repeat"])
            median = statistics.median(timings)
            p95 = sorted(timings)[max(0, round(0.95 * len(timings)) - 1)]
            self.stdout.write(
                f"{label:46} {median:7.1f} {p95:7.1f} {max(timings):7.1f} {queries:7d}"
            )
            if label in dict(SCENARIOS) and p95 > options["budget_ms"]:
                over.append(label)
        if over:
            raise CommandError(f"Over the {options['budget_ms']:.0f} ms budget: {', '.join(over)}")
        self.stdout.write(f"\nAll required scenarios within {options['budget_ms']:.0f} ms (p95).")

    def _time(self, client: Client, url: str, repeat: int) -> tuple[list[float], int]:
        timings = []
        queries = 0
        for run in range(repeat + 2):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise CommandError(f"GET {url} answered {response.status_code}.")
            if run >= 2:
                timings.append(elapsed)
                queries = len(captured.captured_queries)
        return timings, queries

    def _agent(self, public_id: str | None) -> Agent:
        if public_id:
            agent = Agent.objects.filter(public_id=public_id).first()
            if agent is None:
                raise CommandError(f"No agent with public id {public_id!r}.")
            return agent
        from django.db.models import Count

        agent = Agent.objects.annotate(n=Count("contacts")).order_by("-n").first()
        if agent is None:
            raise CommandError("No agent yet: run seed_demo first.")
        return agent

    def _user(self, agent: Agent, email: str | None):
        members = Membership.objects.filter(workspace_id=agent.workspace_id).select_related("user")
        if email:
            members = members.filter(user__username=email)
        membership = members.order_by("-role", "id").first()
        if membership is None:
            raise CommandError(
                f"No member of workspace {agent.workspace.name!r} to view the table as. Add one "
                f"with: manage.py bootstrap --workspace {agent.workspace.name!r} --agent "
                f"{agent.name!r} --admin-email bench@example.com"
            )
        return get_user_model().objects.get(pk=membership.user_id)
