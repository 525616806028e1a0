"""What the help desk tells the apps above it, inside the transaction of the change.

- `conversation_changed(conversation, change, before)`: `change` is "created" (before is
  None) or "status_changed" (before is the old status; the conversation holds the new one).
"""

from __future__ import annotations

from django.dispatch import Signal

conversation_changed = Signal()
