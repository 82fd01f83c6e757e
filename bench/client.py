"""A small HTTP/1.1 load generator for when wrk is not installed: keep-alive connections, one
request in flight on each, latencies recorded per request. Runs as its own process:

    python -m bench.client http://127.0.0.1:8000/ --connections 8 --seconds 5 [--body-file F --header H:V]

and prints one JSON line with the same fields as the wrk driver (bench/load.py).
"""

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


def build_request(url: str, method: str, body: bytes, headers: list[str]) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: keep-alive"]
    lines += headers
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length or chunked); returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def connection(url: str, request: bytes, stop_at: float, latencies: list[float], errors: dict) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 300:
                errors["status"] += 1
    except (OSError, asyncio.IncompleteReadError):
        errors["read"] += 1
    finally:
        writer.close()


async def run(url: str, method: str, body: bytes, headers: list[str], connections: int, seconds: float) -> dict:
    request = build_request(url, method, body, headers)
    latencies: list[float] = []
    errors = {"status": 0, "read": 0}
    started = time.perf_counter()
    await asyncio.gather(*(connection(url, request, started + seconds, latencies, errors) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else float("nan")

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": percentile(50) * 1e3,
        "p99_ms": percentile(99) * 1e3,
        "errors": errors["status"] + errors["read"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body-file")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    body = open(args.body_file, "rb").read() if args.body_file else b""
    result = asyncio.run(run(args.url, args.method, body, args.header, args.connections, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
