"""Web health check: the app answers the login page through the full middleware stack.

Sends the Host and X-Forwarded-Proto a proxy would, so ALLOWED_HOSTS and the HTTPS redirect are exercised too.
"""

import http.client
import os
import sys

host = (os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")[0].strip() or "localhost").lstrip(".")
port = int(os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").rsplit(":", 1)[1])
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
try:
    connection.request("GET", "/admin/login/", headers={"Host": host, "X-Forwarded-Proto": "https"})
    status = connection.getresponse().status
except OSError as error:
    sys.exit(f"web: no answer on port {port}: {error}")
sys.exit(0 if status == 200 else f"web: /admin/login/ answered {status}")
