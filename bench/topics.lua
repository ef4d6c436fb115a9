-- wrk script for the topic-bus publish bench: one agent publishes keyed messages to one topic.
-- usage: wrk -t1 -c16 -d10s -s bench/topics.lua URL -- <agentId> <agentToken> <topic>
-- Keys cycle through 16 orders, so every partition is written, as the native clients do.
local reqs = {}
local n = 0

function init(args)
  local id, token, topic = args[1], args[2], args[3]
  local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  for i = 1, 16 do
    local body = '{"topic":"' .. topic .. '","key":"order-' .. i ..
                 '","payload":{"orderId":"o-1","amount":42}}'
    reqs[i] = wrk.format("POST", "/api/agents/" .. id .. "/topics/publish", headers, body)
  end
end

function request()
  n = n % 16 + 1
  return reqs[n]
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
