"""The WSGI application (gunicorn: `make serve`, the benchmark's servers).

Everything loaded by now (Django, the apps, their modules and URL patterns: about 110,000
objects) lives as long as the process, so it is moved out of the garbage collector's sight
(`gc.freeze`): a full collection otherwise walks all of it, pausing whichever request is
running for 60-90 ms every few thousand requests, which is what the slowest identify calls
were waiting on. It also keeps those pages shared between forked workers.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
gc.freeze()
