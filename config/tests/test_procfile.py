import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
from django.conf import settings

from config.tests.private_redis import free_port

ROOT = Path(__file__).resolve().parents[2]


def procfile() -> dict[str, str]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def test_release_step_migrates_before_the_new_version_serves():
    assert procfile()["release"] == "python manage.py migrate --noinput"


def test_web_serves_asgi_on_every_interface_with_ping_settings_and_no_proxy_headers():
    args = shlex.split(procfile()["web"])
    # daphne's own command line, through the launcher that closes oversized messages with 1009.
    assert args[:3] == ["python", "-m", "config.server"]
    assert args[args.index("--bind") + 1] == "0.0.0.0"
    assert args[args.index("--port") + 1] == "$PORT"
    assert args[args.index("--ping-interval") + 1] == "25"
    assert args[args.index("--ping-timeout") + 1] == "60"
    # Daphne would take the client's address from the leftmost, client-written X-Forwarded-For
    # entry; config.client_ip reads that header as far as TRUSTED_PROXY_COUNT trusts it.
    assert "--proxy-headers" not in args
    assert args[-1] == "config.asgi:application"


async def websocket_ping_then_oversize(port: int) -> tuple[dict, int]:
    """The pong to a ping, then the close code for a message over 1 MB."""
    url = f"ws://127.0.0.1:{port}/ws/live/"
    async with websockets.connect(url, origin=f"http://127.0.0.1:{port}", max_size=None) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        pong = json.loads(await asyncio.wait_for(ws.recv(), 15))
        await ws.send("x" * (1024 * 1024 + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 15)
    return pong, closed.value.rcvd.code


@pytest.mark.slow
def test_the_procfile_web_command_serves_healthz_and_websockets_on_port():
    port = free_port()
    command = procfile()["web"].replace("$PORT", str(port))
    env = {k: v for k, v in os.environ.items() if k not in ("REPLIT_DEPLOYMENT", "PORT")}
    env["PORT"] = str(port)
    # Two workers behind the port, whatever the machine's cores.
    env["WEB_CONCURRENCY"] = "2"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(
        shlex.split(command),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # A deadline for a loaded machine: two workers each import Django before they answer.
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    status, body = r.status, json.loads(r.read())
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert status == 200
        assert body == {"status": "ok"}
        assert asyncio.run(websocket_ping_then_oversize(port)) == ({"type": "pong"}, 1009)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_worker_consumes_every_queue_and_beat_runs_the_schedule():
    worker = shlex.split(procfile()["worker"])
    assert worker[:4] == ["celery", "-A", "config", "worker"]
    assert set(worker[worker.index("--queues") + 1].split(",")) == set(settings.JOB_QUEUES)
    assert shlex.split(procfile()["beat"])[:4] == ["celery", "-A", "config", "beat"]


def test_make_worker_runs_the_procfile_worker_with_beat_inside():
    makefile = (ROOT / "Makefile").read_text()
    line = makefile.split("\nworker: install\n\t", 1)[1].splitlines()[0]
    args = shlex.split(line.replace("$(BIN)/", ""))
    assert args[:4] == ["celery", "-A", "config", "worker"]
    assert "-B" in args
    assert args[args.index("--queues") + 1] == shlex.split(procfile()["worker"])[5]
