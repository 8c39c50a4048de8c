-- wrk script of bench_serve.py's closed loop: POST /predict, each request
-- the next JSON body of the file, one per line, round robin; done() prints "wrk_result {json}".
--   wrk -t1 -c32 -d10s -s scripts/wrk_predict.lua http://127.0.0.1:8000/predict -- bodies.jsonl
local requests, count, next_index = {}, 0, 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(args[1]) do
    if #line > 0 then
      count = count + 1
      requests[count] = wrk.format("POST", nil, headers, line)
    end
  end
  assert(count > 0, "no request bodies in " .. tostring(args[1]))
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'wrk_result {"requests": %d, "duration_us": %d, "http_errors": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "p50_ms": %.4f, "p95_ms": %.4f, ' ..
    '"p99_ms": %.4f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
