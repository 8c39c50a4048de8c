"""``scripts/profile_summary.py``: py-spy raw profiles of the service, summed by thread and stage
(stacks in py-spy's format, cut from a profile of ``tweetcls serve`` under load)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEAD = 'process 11979:"python -m tweetcls serve --model runs/pipeline/serving"'
THREAD = "Thread._bootstrap (threading.py:1002);Thread._bootstrap_inner (threading.py:1045)"
WORKER = f"{THREAD};Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:83)"
LOOP = (
    "_run_module_as_main (<frozen runpy>:198);main (tweetcls/serving/command.py:96);"
    "Server.run (uvicorn/server.py:86);Runner.run (asyncio/runners.py:118)"
)
STACKS = {  # stack below the process -> samples
    f"{WORKER};MicroBatcher._work (tweetcls/serving/batcher.py:237);Backend.score "
    "(tweetcls/inference/base.py:139);Session.run (onnxruntime/capi/x.py:401)": 60,
    f"{WORKER};MicroBatcher._work (tweetcls/serving/batcher.py:237);Backend.encode "
    "(tweetcls/inference/base.py:80);Encoder.__call__ (tweetcls/core/inputs.py:90)": 10,
    f"{THREAD};Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81)": 30,
    f"{LOOP};RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py:422);"
    "build_router.<locals>.predict (tweetcls/serving/routes/predict.py:65)": 25,
    LOOP: 75,
    f"{THREAD};WorkerThread.run (anyio/_backends/_asyncio.py:1113)": 100,
    f"{THREAD};Thread.run (threading.py:982);RequestLog._write_loop "
    "(tweetcls/monitoring/requestlog.py:248);RequestLog._insert (x.py:1)": 5,
}


def test_samples_are_summed_by_thread_and_stage(
    run_script: Callable[..., Any], tmp_path: Path
) -> None:
    profile, out = tmp_path / "idle.txt", tmp_path / "summary.json"
    profile.write_text("".join(f"{HEAD};{stack} {n}\n" for stack, n in STACKS.items()))
    proc = run_script("profile_summary", str(profile), "--json", str(out))
    rows = {(r["thread"], r["stage"]): r for r in json.loads(out.read_text())["rows"]}
    assert {key: row["samples"] for key, row in rows.items()} == {
        ("model", "ONNX Runtime run"): 60,
        ("model", "tokenize"): 10,
        ("model", "waiting for a batch"): 30,
        ("event loop", "HTTP path"): 25,
        ("event loop", "loop (idle included)"): 75,
        ("thread pool", "anyio workers"): 100,
        ("request log", "writing"): 5,
    }
    assert rows[("model", "ONNX Runtime run")]["share"] == 60 / 305
    assert rows[("model", "ONNX Runtime run")]["share_of_thread"] == 0.6
    assert "waiting for a batch" in proc.stdout  # the printed table
