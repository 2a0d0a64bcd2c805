-- wrk script of the bench: replays pre-built requests from a file, each thread its own share.
--
-- Environment:
--   BENCH_REQUESTS  file, one request a line: METHOD \t PATH \t TOKEN \t FLAGS \t BODY
--                   TOKEN is a 1-based line of BENCH_TOKENS, or 0 for none; FLAGS holds `i`
--                   when the request needs a unique Idempotency-Key; BODY may be empty.
--   BENCH_TOKENS    file, one bearer token a line
--   BENCH_RUN       a prefix that makes this run's idempotency keys unique
--   BENCH_THREADS   number of wrk threads (-t)
--
-- A request is sent once; a thread that has sent all of its share starts again from the
-- first (counted as `wrapped`: for signed submissions that means replays, so the bench
-- generates enough of them). done() prints one line `BENCH_JSON {...}` for bench/loadgen.py.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter - 1)
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  local start = 1
  for _ = 1, 4 do
    local tab = string.find(line, "\t", start, true)
    if tab == nil then
      table.insert(fields, string.sub(line, start))
      start = #line + 1
    else
      table.insert(fields, string.sub(line, start, tab - 1))
      start = tab + 1
    end
  end
  table.insert(fields, string.sub(line, start))
  return fields
end

local function read_lines(path)
  local lines = {}
  local handle = assert(io.open(path, "r"))
  for line in handle:lines() do
    table.insert(lines, line)
  end
  handle:close()
  return lines
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local tokens = {}
  local tokens_file = os.getenv("BENCH_TOKENS")
  if tokens_file and tokens_file ~= "" then
    tokens = read_lines(tokens_file)
  end
  run_prefix = (os.getenv("BENCH_RUN") or "run") .. "-" .. id
  requests = {}
  local n = 0
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    if n % nthreads == id then
      local f = split(line)
      local headers = {}
      local token = tonumber(f[3]) or 0
      if token > 0 then
        headers["Authorization"] = "Bearer " .. tokens[token]
      end
      local body = nil
      if f[5] ~= nil and f[5] ~= "" then
        body = f[5]
        headers["Content-Type"] = "application/json"
      end
      local entry = { method = f[1], path = f[2], headers = headers, body = body }
      if string.find(f[4] or "", "i", 1, true) then
        entry.idempotent = true
      else
        entry.raw = wrk.format(f[1], f[2], headers, body)
      end
      table.insert(requests, entry)
    end
    n = n + 1
  end
  position = 0
  sent = 0
  wrapped = 0
  statuses = {}
  sample = ""
end

function request()
  position = position + 1
  if position > #requests then
    position = 1
    wrapped = wrapped + 1
  end
  sent = sent + 1
  local entry = requests[position]
  if entry.raw then
    return entry.raw
  end
  entry.headers["Idempotency-Key"] = run_prefix .. "-" .. sent
  return wrk.format(entry.method, entry.path, entry.headers, entry.body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if (status < 200 or status > 299) and sample == "" and body then
    sample = string.sub(body, 1, 300)
  end
end

local function quote(text)
  text = string.gsub(text, "[%c\"\\]", function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return "\"" .. text .. "\""
end

function done(summary, latency, requests_stats)
  local merged = {}
  local wraps = 0
  local samples = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses") or {}
    for k, v in pairs(counts) do
      merged[k] = (merged[k] or 0) + v
    end
    wraps = wraps + (thread:get("wrapped") or 0)
    local s = thread:get("sample") or ""
    if s ~= "" then
      table.insert(samples, quote(s))
    end
  end
  local parts = {}
  for k, v in pairs(merged) do
    table.insert(parts, string.format("\"%s\":%d", k, v))
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"duration_us\":%d,\"requests\":%d,\"bytes\":%d," ..
    "\"socket_errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"timeout\":%d},\"status_errors\":%d," ..
    "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p95\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"mean\":%.1f}," ..
    "\"statuses\":{%s},\"wrapped\":%d,\"samples\":[%s]}\n",
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(95.0), latency:percentile(99.0),
    latency.max, latency.mean,
    table.concat(parts, ","), wraps, table.concat(samples, ",")
  ))
end
