-- wrk script for bench/proxy.sh: every request is the same small,
-- non-streaming OpenAI chat completion, read from bench/request.json (or
-- $BENCH_REQUEST). Its model names the provider "bench", so tollgate routes it
-- to the static upstream; the direct and nginx targets ignore the body. The
-- client key is replaced by the provider key configured in tollgate.
-- $BENCH_HEADERS adds headers, "Name: value" pairs separated by "|" (the
-- cache and limited targets of bench/proxy.sh).
local path = os.getenv("BENCH_REQUEST") or "bench/request.json"
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.body = (body:gsub("%s+$", ""))
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-client-bench"
for pair in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^|]+") do
    local name, value = pair:match("^%s*([^:]+):%s*(.-)%s*$")
    if name then wrk.headers[name] = value end
end
