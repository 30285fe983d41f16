-- wrk script: the read mix of `testbed bench registry` (Zipf over the agents, exponent 1; the
-- same route shares), for cross-checking its figures with an independent load tool.
--   KEYS=hmk_...,hmk_... AGENTS=1000 wrk -t1 -c32 -d10s --latency -s benches/registry-zipf.lua http://[::1]:8000
-- wrk is closed loop: it measures the most the API answers with 32 requests outstanding, not
-- the latency at a fixed offered rate. It goes past one key's limit (enterprise: 1,000,000 a
-- minute), so give several keys (comma-separated): each request takes one at random.
local agents = tonumber(os.getenv("AGENTS") or "1000")
local keys = {}
for key in string.gmatch(os.getenv("KEYS") or error("set KEYS to API keys (hypermesh keys create)"), "[^,]+") do
  keys[#keys + 1] = key
end
local cumulative, total = {}, 0
for r = 1, agents do
  total = total + 1 / r
  cumulative[r] = total
end

local function zipf()
  local x = math.random() * total
  local lo, hi = 1, agents
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cumulative[mid] <= x then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end

local routes = {
  { 45, function(a) return "/api/v1/agents/" .. a end },
  { 20, function(a) return "/api/v1/agents/" .. a .. "/stats" end },
  { 15, function(a) return "/api/v1/agents/" .. a .. "/feedback" end },
  { 10, function(a) return "/api/v1/agents/" .. a .. "/validations" end },
  { 10, function(a) return "/api/v1/agents/?limit=20&cursor=" .. a end },
}

request = function()
  local pick, a = math.random(100), zipf()
  for _, route in ipairs(routes) do
    if pick <= route[1] then
      return wrk.format("GET", route[2](a), { ["Authorization"] = "Bearer " .. keys[math.random(#keys)] })
    end
    pick = pick - route[1]
  end
end

done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("non-2xx or errors: %d status, %d connect, %d read, %d timeout\n",
    non2xx, summary.errors.connect, summary.errors.read, summary.errors.timeout))
end
