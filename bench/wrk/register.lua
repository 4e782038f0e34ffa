-- POST /register with a JSON body.
wrk.method = "POST"
wrk.path = "/register"
wrk.body = '{"email":"User@Example.com","password":"hunter2hunter2"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = "bench/1.0"
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
