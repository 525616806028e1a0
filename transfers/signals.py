"""What transfers tell the apps above them, inside the transaction of the change.

- `import_completed(job)`: an import (not a dry run) wrote its last batch and is completed.
"""

from __future__ import annotations

from django.dispatch import Signal

import_completed = Signal()
