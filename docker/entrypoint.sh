#!/bin/sh
# Every srmos container: wait until PostgreSQL and Redis answer, then hand PID 1 to the command
# (gunicorn or celery), so SIGTERM from `docker stop` reaches it and requests/tasks in flight finish.
set -eu
python /app/docker/wait_for.py
exec "$@"
