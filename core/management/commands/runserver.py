"""`runserver` (what `make run` serves with) on a server whose listen backlog survives a
burst of concurrent calls (core.servers); otherwise Django's, static files included."""

from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver

from core.servers import BurstTolerantWSGIServer


class Command(StaticRunserver):
    server_cls = BurstTolerantWSGIServer
