"""The docker/ deployment, checked without Docker: compose structure, that every command and file it names exists
in the project, and that the settings it feeds pass Django's deployment checks."""

import ast
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILES = ["compose.yaml", "compose.gpu-worker.yaml"]
DOCKERFILES = ["Dockerfile.web", "Dockerfile.worker", "Dockerfile.worker-cuda"]


def load_compose(name):
    return yaml.safe_load((DOCKER / name).read_text())


def read_env_example():
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        line = line.strip()
        commented = line.startswith("#")
        line = line.lstrip("#").strip()
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            values[match[1]] = None if commented else match[2]
    return values


def settings_env_vars(path):
    """Names read from the environment in a Python file: os.environ.get/[]/setdefault, env_bool, env_list."""
    names = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func in {"os.environ.get", "env_bool", "env_list", "os.getenv"}:
                names.add(node.args[0].value)
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant):
                names.add(node.slice.value)
    return names


def shell_words(command):
    """The words of a compose/Dockerfile command, `sh -c "..."` unwrapped into its commands."""
    words = list(command) if isinstance(command, list) else shlex.split(command)
    if words[:2] == ["sh", "-c"]:
        words = shlex.split(words[2].replace("$$", "$"))
    return words


def test_compose_has_the_services_with_health_checks_and_named_volumes():
    compose = load_compose("compose.yaml")
    services = compose["services"]
    assert {"web", "worker", "worker-cuda", "redis", "db"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service and service["healthcheck"]["test"], f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name
    # Database and media on named volumes, the media one shared by the web app and every worker.
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    for name in ("web", "worker", "worker-cuda"):
        assert "media:/data/media" in services[name]["volumes"], name
        assert services[name]["env_file"] == [".env"], name
        for dependency in ("db", "redis"):
            assert services[name]["depends_on"][dependency]["condition"] == "service_healthy"
    declared = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert not source.startswith((".", "/")), f"{volume}: use a named volume"
            assert source in declared, f"{source} is not declared under volumes:"
    # The GPU worker asks for a GPU and only starts with the gpu profile.
    gpu = services["worker-cuda"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    # Only the web port is published, and only on loopback (the HTTPS proxy is in front).
    for name, service in services.items():
        for port in service.get("ports", []):
            assert name == "web" and port.startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_remote_gpu_worker_compose_shares_media_over_nfs():
    compose = load_compose("compose.gpu-worker.yaml")
    (worker,) = compose["services"].values()
    assert "media:/data/media" in worker["volumes"]
    assert compose["volumes"]["media"]["driver_opts"]["type"] == "nfs"
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.worker-cuda"


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_every_compose_command_exists_in_the_project(compose_file):
    from django.core.management import get_commands

    services = load_compose(compose_file)["services"]
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file(), name
        if "command" not in service:
            continue
        words = shell_words(service["command"])
        check_command_words(words, get_commands())


def check_command_words(words, django_commands):
    if "manage.py" in words:
        command = words[words.index("manage.py") + 1]
        assert command in django_commands, f"manage.py {command} does not exist"
    if "gunicorn" in words:
        config = words[words.index("-c") + 1]
        assert (REPO / config).is_file(), config
        module = words[-1]
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), module
        assert "application" in (REPO / (module.replace(".", "/") + ".py")).read_text()
    if "celery" in words:
        app_module = words[words.index("-A") + 1]
        from celery import Celery

        module = __import__(f"{app_module}.celery", fromlist=["app"])
        assert isinstance(module.app, Celery)
        assert words[words.index("-A") + 2] in {"worker", "inspect"}


def test_gunicorn_config_loads_and_names_real_settings():
    namespace = {}
    exec(compile((DOCKER / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    from gunicorn.config import Config

    known = set(Config().settings)
    settings = {k for k in namespace if not k.startswith("_") and k not in {"multiprocessing", "os"}}
    assert settings <= known, f"unknown gunicorn settings: {settings - known}"
    assert namespace["worker_class"] == "gthread" and namespace["graceful_timeout"] > 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfiles_copy_and_run_files_that_exist(dockerfile):
    from django.core.management import get_commands

    text = (DOCKER / dockerfile).read_text().replace("\\\n", " ")
    copies = re.findall(r"^COPY\s+(?!--from)(\S+)\s+\S+$", text, flags=re.M)
    assert "requirements.txt" in copies and "config" in copies and "mos_study" in copies
    for source in copies:
        assert (REPO / source).exists(), f"{dockerfile}: COPY {source}: no such file in the project"
    (entrypoint,) = re.findall(r'^ENTRYPOINT \["(\S+)"\]', text, flags=re.M)
    script = REPO / entrypoint.removeprefix("/app/")
    assert script.is_file() and script.stat().st_mode & stat.S_IXUSR, f"{entrypoint} missing or not executable"
    for script_name in re.findall(r"docker/\w+\.py", text):
        assert (REPO / script_name).is_file(), script_name
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, flags=re.M)
    check_command_words(shell_words(ast.literal_eval(cmd)), get_commands())
    assert "USER srmos" in text, "containers must not run as root"


def test_every_setting_read_from_the_environment_is_in_env_example():
    documented = read_env_example()
    for source in ("config/settings.py", "docker/gunicorn.conf.py"):
        missing = settings_env_vars(REPO / source) - set(documented)
        assert not missing, f"{source} reads {sorted(missing)} but docker/.env.example does not list them"


def test_compose_interpolations_are_defined_in_env_example():
    documented = read_env_example()
    for name in COMPOSE_FILES:
        text = (DOCKER / name).read_text().replace("$$", "")
        for variable, has_default in re.findall(r"\$\{([A-Z0-9_]+)(:[-?])?", text):
            assert variable in documented or has_default == ":-", f"{name} uses ${{{variable}}}"


def test_env_example_urls_agree_with_the_services_and_passwords():
    env = read_env_example()
    assert env["DATABASE_URL"] == (
        f"postgres://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@db:5432/{env['POSTGRES_DB']}"
    )
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_URL"):
        assert env[name].startswith(f"redis://:{env['REDIS_PASSWORD']}@redis:6379/"), name
    assert env["CACHE_URL"] != env["CELERY_BROKER_URL"], "keep the cache out of the broker's database"
    assert env["SRMOS_PRODUCTION"] == "1" and env["DJANGO_DEBUG"] == "0"


def run_manage(*args, env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SRMOS_", "DATABASE_", "CACHE_"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def random_secret():
    import secrets

    return secrets.token_urlsafe(64)


def test_check_deploy_passes_with_no_warnings_in_production_mode():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={
            "SRMOS_PRODUCTION": "1",
            "DJANGO_SECRET_KEY": random_secret(),
            "DJANGO_ALLOWED_HOSTS": "mos.example.org",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)" in result.stdout


def test_check_deploy_passes_with_the_shipped_env_example():
    env = {k: v for k, v in read_env_example().items() if v is not None}
    env["DJANGO_SECRET_KEY"] = random_secret()  # the placeholder itself is refused (next test)
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, "DJANGO_SECRET_KEY must come from the environment"),
        ({"DJANGO_SECRET_KEY": "change-me-to-a-long-random-string"}, "still the placeholder"),
        ({"DJANGO_SECRET_KEY": "x" * 60, "SRMOS_RATE_LIMITS": "{not json"}, "SRMOS_RATE_LIMITS must be JSON"),
        ({"DJANGO_SECRET_KEY": "x" * 60, "CACHE_URL": "memcached://x"}, "CACHE_URL="),
    ],
)
def test_production_refuses_unsafe_or_broken_settings(overrides, message):
    result = run_manage("check", env_overrides={"SRMOS_PRODUCTION": "1", **overrides})
    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_are_hardened():
    code = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER, s.CACHES['default']['BACKEND'])"
    )
    result = run_manage(
        "shell",
        "-c",
        code,
        env_overrides={
            "SRMOS_PRODUCTION": "1",
            "DJANGO_SECRET_KEY": random_secret(),
            "CACHE_URL": "redis://127.0.0.1:6379/1",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "False",
        "True",
        "True",
        "31536000",
        "True",
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        "django.core.cache.backends.redis.RedisCache",
    ]


def test_embedded_default_needs_no_environment(tmp_path):
    result = run_manage("check", env_overrides={})
    assert result.returncode == 0, result.stderr
