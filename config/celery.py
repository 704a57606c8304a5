"""The Celery application.

Without ``CELERY_BROKER_URL`` tasks run in-process (``task_always_eager``), which is what the quick start uses;
with it, workers started by ``celery -A config worker`` pick them up from Redis.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("srmos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
