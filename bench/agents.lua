-- wrk script: round-robin over the bench's agents, and a JSON summary with percentiles.
-- usage: wrk -t1 -c50 -d10s -s bench/agents.lua URL -- <agents-file> <mode>
-- mode: bare (GET /health), version (GET /api/system/version), heartbeat, poll.
-- The agents file holds one "<agentId> <agentToken>" per line. Requests are built once in
-- init() so that request() costs nothing; wrk has no per-connection hook, so with one thread
-- and 50 connections each request goes to the next agent (about one in flight per agent).

local requests = {}
local n = 0

function init(args)
  local path, mode = args[1], args[2]
  for line in io.lines(path) do
    local id, token = line:match("^(%S+)%s+(%S+)$")
    if id then
      local auth = { ["Authorization"] = "Bearer " .. token }
      local req
      if mode == "heartbeat" then
        auth["Content-Type"] = "application/json"
        req = wrk.format("POST", "/api/agents/" .. id .. "/heartbeat", auth,
                         '{"health":{"status":"UP"}}')
      elseif mode == "poll" then
        req = wrk.format("GET", "/api/agents/" .. id .. "/commands", auth)
      elseif mode == "version" then
        req = wrk.format("GET", "/api/system/version")
      else
        req = wrk.format("GET", "/health")
      end
      requests[#requests + 1] = req
    end
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status,
    e.timeout))
end
