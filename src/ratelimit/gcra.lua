-- One login attempt, GCRA (as redis-cell and envoyproxy/ratelimit), atomic in Redis.
-- KEYS[1]: the (client, username) key; KEYS[2]: the client key.
-- ARGV[1], ARGV[2]: emission interval (microseconds) and burst of KEYS[1]; ARGV[3], ARGV[4]: of
-- KEYS[2]. An interval of 0 turns that limit off.
-- Returns {0, 0} when allowed, else {1 or 2 (which limit refused), microseconds to wait}.
-- A key holds its theoretical arrival time (TAT, microseconds of Redis's clock) and expires
-- when that time has passed, so idle keys cost nothing. Redis's clock, not the replicas',
-- so replicas whose clocks disagree still share one limit.
if redis.replicate_commands then
  pcall(redis.replicate_commands)
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

local function attempt(key, interval, burst)
  if interval <= 0 then
    return 0
  end
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then
    tat = now
  end
  local allow_at = tat - interval * (burst - 1)
  if now < allow_at then
    return allow_at - now
  end
  local next_tat = tat + interval
  -- '%.0f': Lua would render a 16-digit number as 1.7e+15.
  redis.call('SET', key, string.format('%.0f', next_tat), 'PX',
    string.format('%.0f', math.ceil((next_tat - now) / 1000)))
  return 0
end

local wait = attempt(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait > 0 then
  return {1, wait}
end
wait = attempt(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait > 0 then
  return {2, wait}
end
return {0, 0}
