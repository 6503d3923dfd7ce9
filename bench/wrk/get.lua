-- One GET, repeated (the upstream hit directly in the http-handler run).
-- Path from BENCH_PATH. Same RESULT line as post.lua.

wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH") or "/"

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d sockerr=%d\n",
    summary.requests / secs,
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.requests,
    e.status,
    e.connect + e.read + e.write + e.timeout))
end
