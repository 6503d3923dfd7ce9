-- One request kind of bench/load.sh, counting statuses. Request from the
-- environment (BENCH_PATH, BENCH_BODY, BENCH_AUTH); BENCH_KIND names it and
-- BENCH_EXPECT is the one status it must get. done() prints one line:
-- LOAD kind=... expect=... requests=... ok=... unexpected=... sockerr=... statuses=200:n,403:n

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
  local all = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do
      all[status] = (all[status] or 0) + n
    end
  end
  local ok, unexpected, parts = 0, 0, {}
  for status, n in pairs(all) do
    if status == expect then ok = ok + n else unexpected = unexpected + n end
    table.insert(parts, status .. ":" .. n)
  end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format(
    "LOAD kind=%s expect=%d requests=%d ok=%d unexpected=%d sockerr=%d p99_ms=%.2f statuses=%s\n",
    os.getenv("BENCH_KIND") or "?", expect, summary.requests, ok, unexpected,
    e.connect + e.read + e.write + e.timeout, latency:percentile(99) / 1000,
    table.concat(parts, ",")))
end
