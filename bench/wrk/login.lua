-- POST /login, an OAuth2 password form (urlencoded), as FastAPI's OAuth2PasswordRequestForm takes it.
wrk.method = "POST"
wrk.path = "/login"
wrk.body = "grant_type=password&username=user%40example.com&password=hunter2hunter2&scope=&client_id=&client_secret="
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = "bench/1.0"
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
