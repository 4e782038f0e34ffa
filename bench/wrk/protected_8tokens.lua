-- GET /protected rotating 8 distinct bearer tokens (JWT-shaped, exp in 2030): bench/shield.sh
-- and bench/shield_nginx.sh. The requests are made in init(), once wrk has set its Host header
-- (made at load time they would carry none: a 400 from both auth-proxy and nginx).
local base = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyQGV4YW1wbGUuY29tIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
local requests = {}
function init(args)
  for i = 1, 8 do
    requests[i] = wrk.format("GET", "/protected", {
      ["Authorization"] = "Bearer " .. base .. i,
      ["Accept"] = "application/json",
      ["User-Agent"] = "bench/1.0",
    })
  end
end
local n = 0
function request()
  n = n + 1
  return requests[n % 8 + 1]
end
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
