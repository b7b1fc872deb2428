"""CSV downloads streamed as they are read: the flow runs and the consent audit.

An export may cover months of a busy store, so rows are written in chunks
of about 64 KiB as the database cursor yields them, never gathered first.
Cells a spreadsheet would run as a formula are quoted (CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, Sequence
from typing import Any

from aiohttp import web

CHUNK = 64 * 1024  # bytes buffered before a write to the client


def cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


async def stream_csv(request: web.Request, filename: str, header: Sequence[str],
                     rows: AsyncIterable[Sequence[str]]) -> web.StreamResponse:
    """Answer ``request`` with ``header`` then ``rows`` (cells already made safe) as a download."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"'})
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    async for row in rows:
        writer.writerow(row)
        if buffer.tell() > CHUNK:
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response
