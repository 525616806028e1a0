"""Create (or reuse) a workspace, an agent and an admin, and print their keys as one JSON line."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workspaces.models import Agent, ApiKey, Membership
from workspaces.selectors import identity_secret_current
from workspaces.services import (
    agent_create,
    api_key_create,
    identity_secret_create,
    membership_set,
    workspace_get_or_create,
)


class Command(BaseCommand):
    help = (
        "Create or reuse a workspace and agent (and optionally an admin user). Prints one JSON "
        "line: workspace, agent_id, agent_public_id, api_key, identity_secret, admin_email. "
        "A new API key is made on first run or with --new-api-key; otherwise api_key is null "
        "because keys are stored hashed and cannot be shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--agent", required=True)
        parser.add_argument("--admin-email")
        parser.add_argument("--admin-password")
        parser.add_argument("--phone-region", default="US")
        parser.add_argument("--new-api-key", action="store_true")

    def handle(self, *args, **options):
        workspace_name = options["workspace"].strip()
        agent_name = options["agent"].strip()
        if not workspace_name or not agent_name:
            raise CommandError("--workspace and --agent must not be empty.")
        admin_email = (options.get("admin_email") or "").strip().lower() or None
        if options.get("admin_password") and not admin_email:
            raise CommandError("--admin-password needs --admin-email.")

        with transaction.atomic():
            workspace, _ = workspace_get_or_create(name=workspace_name)
            agent = Agent.objects.filter(workspace=workspace, name=agent_name).first()
            if agent is None:
                agent = agent_create(
                    workspace=workspace,
                    name=agent_name,
                    default_phone_region=options["phone_region"],
                )
            if identity_secret_current(agent=agent) is None:
                identity_secret_create(agent=agent)

            raw_key = None
            has_key = ApiKey.objects.filter(agent=agent, revoked_at__isnull=True).exists()
            if options["new_api_key"] or not has_key:
                raw_key = api_key_create(agent=agent, name="bootstrap").raw

            if admin_email:
                user_model = get_user_model()
                user, created = user_model.objects.get_or_create(
                    username=admin_email, defaults={"email": admin_email}
                )
                if options.get("admin_password"):
                    user.set_password(options["admin_password"])
                    user.save()
                elif created:
                    user.set_unusable_password()
                    user.save()
                membership_set(user=user, workspace=workspace, role=Membership.Role.ADMIN)

            secret = identity_secret_current(agent=agent).secret

        self.stdout.write(
            json.dumps(
                {
                    "workspace": workspace.name,
                    "agent_id": agent.pk,
                    "agent_public_id": agent.public_id,
                    "api_key": raw_key,
                    "identity_secret": secret,
                    "admin_email": admin_email,
                }
            )
        )
