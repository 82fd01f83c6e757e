-- wrk script for bench/load.py: the request comes from the environment, the result goes to stdout
-- as one JSON line (latencies in ms), the same fields as bench/client.py prints.
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body_file = os.getenv("BENCH_BODY_FILE") or ""
if body_file ~= "" then
  local file = assert(io.open(body_file, "rb"))
  wrk.body = file:read("*all")
  file:close()
end
local content_type = os.getenv("BENCH_CONTENT_TYPE") or ""
if content_type ~= "" then
  wrk.headers["Content-Type"] = content_type
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
