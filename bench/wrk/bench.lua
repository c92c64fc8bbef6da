-- wrk script of bench/api.py: one case of the API benchmark, chosen by the environment.
--
--   BENCH_MODE     "get" (a fixed GET), "post" (a fixed POST body), "propose" (a transfer
--                  proposal whose reference numbers each request), or "bodies" (pre-built
--                  requests from BENCH_BODIES, each sent once; a thread stops when its
--                  share is used up)
--   BENCH_PATH     the request path (get, post, propose)
--   BENCH_BODY     the POST body (post), or the proposal template with %d %d (propose)
--   BENCH_BODIES   a Lua file setting `requests = { {path, body}, ... }` (bodies)
--   BENCH_TOKEN    a bearer token, if any
--   BENCH_THREADS  wrk's -t, to share out BENCH_BODIES
--   BENCH_MARKER   text a counted response body must contain (tells the case's answers
--                  from the /api/health request a finished thread sends while stopping)
--   BENCH_OUT      where done() writes the figures and every acknowledged request id
--
-- Each thread counts its 2xx answers and keeps (X-Request-Id, first "digest") of each;
-- any other status is tallied by status and body start. done() gathers every thread's.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local mode = os.getenv("BENCH_MODE")
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY") or ""
local marker = os.getenv("BENCH_MARKER") or ""
local token = os.getenv("BENCH_TOKEN") or ""
local headers = {["Content-Type"] = "application/json"}
if token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end

counted = 0
acked = {}
digests = {}
failures = {}

local mine = {}
local sent = 0
local stopped = false

function init(args)
  for name, value in pairs(headers) do
    wrk.headers[name] = value
  end
  if mode == "get" then
    wrk.method = "GET"
    wrk.path = path
  elseif mode == "post" then
    wrk.method = "POST"
    wrk.path = path
    wrk.body = body
  elseif mode == "bodies" then
    dofile(os.getenv("BENCH_BODIES"))
    local share = tonumber(os.getenv("BENCH_THREADS") or "1")
    for index = 1, #requests do
      if (index - 1) % share == id then
        mine[#mine + 1] = requests[index]
      end
    end
    requests = nil
  end
end

if mode == "propose" then
  function request()
    sent = sent + 1
    return wrk.format("POST", path, nil, string.format(body, id, sent))
  end
elseif mode == "bodies" then
  function request()
    sent = sent + 1
    local item = mine[sent]
    if item == nil then  -- this thread's share is sent: stop with a harmless read
      if not stopped then
        stopped = true
        wrk.thread:stop()
      end
      return wrk.format("GET", "/api/health", nil, nil)
    end
    return wrk.format("POST", item[1], nil, item[2])
  end
end

function response(status, response_headers, response_body)
  if status >= 200 and status < 300 then
    if marker == "" or string.find(response_body, marker, 1, true) then
      counted = counted + 1
      acked[#acked + 1] = response_headers["x-request-id"] or response_headers["X-Request-Id"] or "-"
      digests[#digests + 1] = string.match(response_body, '"digest":%s*"(%x+)"') or "-"
    end
  else
    local key = tostring(status) .. " " .. string.gsub(string.sub(response_body, 1, 160), "%s+", " ")
    failures[key] = (failures[key] or 0) + 1
  end
end

function done(summary, latency, requests_stats)
  local out = io.open(os.getenv("BENCH_OUT"), "w")
  local errors = summary.errors
  out:write(string.format("requests %d\nduration_us %d\n", summary.requests, summary.duration))
  out:write(string.format("socket_errors %d %d %d %d\nstatus_errors %d\n", errors.connect,
                          errors.read, errors.write, errors.timeout, errors.status))
  out:write(string.format("latency_us %.0f %.0f %.0f\n", latency:percentile(50),
                          latency:percentile(99), latency.mean))
  for _, thread in ipairs(threads) do
    out:write(string.format("counted %d\n", thread:get("counted")))
    local thread_acked, thread_digests = thread:get("acked"), thread:get("digests")
    for index = 1, #thread_acked do
      out:write("ack " .. thread_acked[index] .. " " .. thread_digests[index] .. "\n")
    end
    for key, count in pairs(thread:get("failures")) do
      out:write(string.format("failure %d %s\n", count, key))
    end
  end
  out:close()
end
