"""The throughput benchmark's lean load generator (``benchmarks/workload.LeanConnection``)
against a real ``wanwu serve``: answers framed right on one kept-alive connection, errors
passed through with their status."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from workload import LeanConnection


def test_lean_connection_keeps_one_connection_for_good_and_bad_uploads(spawn_server, coffee):
    server = spawn_server()
    photo = coffee.read_bytes()

    async def run() -> list[tuple[int, bytes]]:
        conn = await LeanConnection.open(server.port)
        try:
            return [
                await conn.post("/api/v1/classify", photo, "image/jpeg"),
                await conn.post("/api/v1/classify", b"not an image at all", "image/jpeg"),
                await conn.post("/api/v1/classify", photo + b"\0" * 8, "image/jpeg"),
            ]
        finally:
            await conn.close()

    answers = asyncio.run(run())
    assert [status for status, _ in answers] == [200, 415, 200]
    labels = [json.loads(body)["results"][0]["predictions"][0]["label"] for status, body in answers if status == 200]
    assert labels[0] == labels[1] and labels[0] in ("espresso", "cup", "coffee mug")
    assert json.loads(answers[1][1])["error"]["code"] == "not_an_image"
