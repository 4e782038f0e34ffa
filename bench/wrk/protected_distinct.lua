-- GET /protected with a token no other request has (nothing to coalesce): the cost of the
-- coalescing map itself, bench/shield.sh. Each wrk thread numbers its own requests.
local base = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyQGV4YW1wbGUuY29tIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
local thread_id = 0
local n = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
end
function request()
  n = n + 1
  return wrk.format("GET", "/protected", {
    ["Authorization"] = "Bearer " .. base .. (id or 0) .. "x" .. n,
    ["Accept"] = "application/json",
    ["User-Agent"] = "bench/1.0",
  })
end
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
