-- GET /protected with a bearer token (a realistic JWT length).
wrk.method = "GET"
wrk.path = "/protected"
wrk.headers["Authorization"] = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyQGV4YW1wbGUuY29tIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = "bench/1.0"
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
