-- wrk script: a burst of malformed /api/predict requests, cycling through kinds of bad
-- input. Every answer must be a 4xx; a 5xx (or a dropped server) is a failure.
local bodies = {
  {"image/png", "\137PNG\r\n\26\n" .. string.rep("\0", 40)},         -- PNG signature, then garbage
  {"image/png", "not a picture at all"},
  {"image/png", ""},                                                 -- empty body
  {"application/json", "{\"pixels\": [1, 2"},                        -- cut-off JSON
  {"application/json", "{\"pixels\": [" .. string.rep("0.5,", 100) .. "0]}"},  -- 101 numbers
  {"application/json", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"},
  {"application/json", "{\"pixels\": \"lots\"}"},
  {"text/plain", "hello"},                                           -- unsupported type
  {"image/x-portable-graymap", "P5\n99999 99999\n255\n"},            -- huge header, no pixels
  {"image/png", string.rep("A", 1100000)},                           -- over the 1 MB cap
}
local requests = {}
for i, b in ipairs(bodies) do
  requests[i] = wrk.format("POST", "/api/predict", {["Content-Type"] = b[1]}, b[2])
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) next_request = 0; server_errors = 0; client_errors = 0 end
function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
function response(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1
  elseif status >= 400 then client_errors = client_errors + 1 end
end
function done(summary, latency, requests)
  local s, c = 0, 0
  for _, thread in ipairs(threads) do s = s + thread:get("server_errors"); c = c + thread:get("client_errors") end
  local e = summary.errors
  io.write(string.format('{"requests": %d, "answered_4xx": %d, "answered_5xx": %d, "socket_errors": %d, "timeouts": %d}\n',
    summary.requests, c, s, e.connect + e.read + e.write, e.timeout))
end
