-- wrk script of the HTTP benchmark (tests/benchmarks/http_bench.py): replays pre-built requests.
--
--   wrk ... -s replay.lua URL -- REQUESTS_FILE TOKEN RUN_ID
--
-- REQUESTS_FILE has one request a line: METHOD <tab> PATH [<tab> BODY]. Each thread walks the list
-- round robin from its own starting point. "{uniq}" in a body becomes a value unique to this run,
-- thread and request (POST /Users needs a new userName each time). TOKEN "-" sends no Authorization.
-- done() prints one line "BENCH-JSON {...}" with the counts and the latency histogram (microseconds,
-- "value:count" pairs) so the harness can merge rounds into exact percentiles.

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_no", thread_count)
end

local requests = {}
local counter = 0
local prefix = ""

function init(args)
  local path_of_file, token, run = args[1], args[2], args[3]
  local headers = {}
  if token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
  local with_body = {}
  for k, v in pairs(headers) do
    with_body[k] = v
  end
  with_body["Content-Type"] = "application/scim+json"
  for line in io.lines(path_of_file) do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
    if method then
      if body == "" then
        requests[#requests + 1] = { raw = wrk.format(method, path, headers, nil) }
      elseif body:find("{uniq}", 1, true) then
        requests[#requests + 1] = { method = method, path = path, headers = with_body, body = body }
      else
        requests[#requests + 1] = { raw = wrk.format(method, path, with_body, body) }
      end
    end
  end
  if #requests == 0 then
    error("no requests in " .. path_of_file)
  end
  prefix = run .. "-" .. (thread_no or 0) .. "-"
  -- Threads start far apart in the list so that they do not send the same requests together.
  counter = ((thread_no or 1) - 1) * 7919
end

function request()
  counter = counter + 1
  local r = requests[(counter % #requests) + 1]
  if r.raw then
    return r.raw
  end
  local body = r.body:gsub("{uniq}", prefix .. counter)
  return wrk.format(r.method, r.path, r.headers, body)
end

function done(summary, latency, _requests)
  local parts = {}
  for i = 1, #latency do
    local value, count = latency(i)
    parts[#parts + 1] = string.format("%d:%d", value, count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"histogram":"%s"}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ",")))
end
