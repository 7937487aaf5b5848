"""The practical Python limit the feed is compared with: FastAPI on uvicorn doing nothing
but streaming a request body to disk and a file back (no hashing, database or checks).

Served by bench_feed.py as `uvicorn bare_app:app` with the services' uvicorn defaults;
`BENCH_FILES` is the directory it reads from and writes to.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse

FILES = Path(os.environ.get("BENCH_FILES", "."))
app = FastAPI()


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/upload/{name}")
@app.put("/upload/{name}")
async def upload(name: str, request: Request) -> dict[str, int]:
    received = 0
    with (FILES / "uploads" / Path(name).name).open("wb") as handle:
        async for chunk in request.stream():
            handle.write(chunk)
            received += len(chunk)
    return {"bytes": received}


@app.get("/download/{name}")
async def download(name: str) -> FileResponse:
    return FileResponse(FILES / Path(name).name, media_type="application/octet-stream")
