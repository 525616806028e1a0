"""What identify tells the apps above it (the help desk), inside the identify's transaction.

- `visitor_history_moving(session, source, target, actor)`: a visitor who had attached to
  someone else's self-reported contact (`source`) signed in as `target`; only what this
  session did moves. The help desk moves the session's conversations.
"""

from __future__ import annotations

from django.dispatch import Signal

visitor_history_moving = Signal()
