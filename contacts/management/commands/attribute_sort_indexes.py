"""Build (or drop) the indexes behind sorting and filtering the contacts table by attributes."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from attributes.models import AttributeDefinition
from contacts.sort_indexes import sort_index_build, sort_index_drop, sort_index_name
from workspaces.models import Agent


class Command(BaseCommand):
    help = (
        "Build the sort index of every non-archived attribute of an agent, instead of "
        "waiting for the first sort or filter to request it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--agent-public-id", required=True)
        parser.add_argument("--key", action="append", help="Only these keys (repeatable).")
        parser.add_argument("--drop", action="store_true", help="Drop the indexes instead.")

    def handle(self, *args, **options):
        agent = Agent.objects.filter(public_id=options["agent_public_id"]).first()
        if agent is None:
            raise CommandError(f"No agent with public id {options['agent_public_id']!r}.")
        definitions = AttributeDefinition.objects.filter(agent=agent, archived=False)
        if options["key"]:
            definitions = definitions.filter(key__in=options["key"])
        for definition in definitions.order_by("position", "id"):
            name = sort_index_name(agent_id=agent.pk, key=definition.key)
            started = time.monotonic()
            if options["drop"]:
                sort_index_drop(agent_id=agent.pk, key=definition.key)
                self.stdout.write(f"{definition.key}: dropped {name}")
                continue
            built = sort_index_build(definition)
            took = time.monotonic() - started
            self.stdout.write(
                f"{definition.key}: {'built' if built else 'already there'} {name} ({took:.1f} s)"
            )
