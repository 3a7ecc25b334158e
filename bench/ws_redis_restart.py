"""How long after Redis comes back do cross-instance events reach an instance's sockets again?

Starts a private redis-server and one daphne process on free ports, holds a socket on
/ws/live/, publishes an event every 50 ms from another process, stops Redis for a few seconds,
starts it again, and prints the gap between the restart and the first event received after it.

    .venv/bin/python bench/ws_redis_restart.py
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ws_fanout import DAPHNE_FLAGS, PYTHON, ROOT, free_port, port_wait

OUTAGE_SECONDS = 3.0


def redis_start(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    port_wait(port)
    return process


def publisher(env: dict) -> subprocess.Popen:
    code = (
        "import time\n"
        "from asgiref.sync import async_to_sync\n"
        "from channels.layers import get_channel_layer\n"
        "layer = get_channel_layer()\n"
        "async def loop():\n"
        "    while True:\n"
        "        message = {'type': 'event.deliver', 'group': 'live', 'event': 'bench.tick',\n"
        "                   'data': {'sent': time.time()}, 'ts': ''}\n"
        "        try:\n"
        "            await layer.group_send('live', message)\n"
        "        except Exception:\n"
        "            pass\n"
        "        await __import__('asyncio').sleep(0.05)\n"
        "async_to_sync(loop)()\n"
    )
    return subprocess.Popen(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def main() -> None:
    redis_port, web_port = free_port(), free_port()
    env = dict(os.environ, UPSTASH_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    redis = redis_start(redis_port)
    server = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port), *DAPHNE_FLAGS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sender = None
    try:
        port_wait(web_port)
        ws = await websockets.connect(
            f"ws://127.0.0.1:{web_port}/ws/live/", origin=f"http://127.0.0.1:{web_port}"
        )
        sender = publisher(env)
        await asyncio.wait_for(ws.recv(), 30)
        redis.terminate()
        redis.wait()
        await asyncio.sleep(OUTAGE_SECONDS)
        while True:
            try:
                await asyncio.wait_for(ws.recv(), 0.01)
            except TimeoutError:
                break
        redis = redis_start(redis_port)
        restarted = time.time()
        frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
        print(
            f"Redis down {OUTAGE_SECONDS:.0f} s; first cross-instance event after the restart "
            f"arrived {time.time() - restarted:.2f} s after it "
            f"(published {frame['data']['sent'] - restarted:.2f} s after it)"
        )
        await ws.close()
    finally:
        for process in (sender, server, redis):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
