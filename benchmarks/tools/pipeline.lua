-- SPDX-License-Identifier: MIT
-- wrk script: HTTP/1.1 pipelining, 16 requests per write (wrk's scripts/pipeline.lua pattern),
-- used by http_server_run.sh. The path is wrk's URL path; the depth is 16 unless
-- `wrk ... -s pipeline.lua URL -- DEPTH`.
local depth = 16
local req

init = function(args)
    if args[1] then
        depth = tonumber(args[1])
    end
    local r = {}
    for i = 1, depth do
        r[i] = wrk.format(nil)
    end
    req = table.concat(r)
end

request = function()
    return req
end
