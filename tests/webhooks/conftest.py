"""What the webhook tests share: a receiver on 127.0.0.1, and settings that let deliveries
reach it (production refuses loopback and plain http)."""

from __future__ import annotations

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture(autouse=True)
def _local_targets(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_REQUIRE_HTTPS = False


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running
