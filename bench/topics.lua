-- wrk script for the topic-bus publish bench: one agent publishes keyed messages to one topic.
-- usage: wrk -t1 -c16 -d10s -s bench/topics.lua URL -- <agentId> <agentToken> <topic>
local req

function init(args)
  local id, token, topic = args[1], args[2], args[3]
  local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  local body = '{"topic":"' .. topic .. '","key":"order-' .. math.random(1000) ..
               '","payload":{"orderId":"o-1","amount":42}}'
  req = wrk.format("POST", "/api/agents/" .. id .. "/topics/publish", headers, body)
end

function request()
  return req
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
