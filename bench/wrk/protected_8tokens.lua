-- GET /protected rotating 8 distinct bearer tokens (JWT-shaped, exp in 2030): bench/shield.sh.
local base = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyQGV4YW1wbGUuY29tIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
local requests = {}
for i = 1, 8 do
  requests[i] = wrk.format("GET", "/protected", {
    ["Authorization"] = "Bearer " .. base .. i,
    ["Accept"] = "application/json",
    ["User-Agent"] = "bench/1.0",
  })
end
local n = 0
function request()
  n = n + 1
  return requests[n % 8 + 1]
end
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
