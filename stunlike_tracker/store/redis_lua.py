"""The Lua scripts of the Redis store (each runs atomically on one hash slot).

Every script touches keys of one hash tag only, so it runs unchanged on one
Redis and on Redis Cluster: ``{p:PEER}`` keys (record, tombstone, cached
answers, ATTACH indications) for per-peer work, ``{s:SWARM}`` keys (member
sets, listing records, offers, grants) for per-swarm work, ``{d:N}`` for the
deadline buckets. Keys built inside a script carry the tag of KEYS[1].
"""

from __future__ import annotations

# Writes of one request (or one sweep step) to one slot. ARGV[1] is a JSON
# list of operations; a leading ``cas`` aborts everything (returns 0) when the
# key does not hold the expected text ('' = absent).
APPLY = r"""
local ops = cjson.decode(ARGV[1])
local first = ops[1]
if first and first[1] == 'cas' then
  local cur = redis.call('GET', KEYS[first[2]]) or ''
  if cur ~= first[3] then return 0 end
end
for i = 1, #ops do
  local op = ops[i]
  local c = op[1]
  if c == 'cas' then
    if op[4] == '' then redis.call('DEL', KEYS[op[2]])
    else redis.call('SET', KEYS[op[2]], op[4]) end
  elseif c == 'set' then
    redis.call('SET', KEYS[op[2]], op[3], 'PX', op[4])
  elseif c == 'del' then
    redis.call('DEL', KEYS[op[2]])
  elseif c == 'join' then
    -- {'join', info, add_set, other_set, peer, listing}
    redis.call('SADD', KEYS[op[3]], op[5])
    redis.call('SREM', KEYS[op[4]], op[5])
    redis.call('HSET', KEYS[op[2]], op[5], op[6])
  elseif c == 'leave' then
    -- {'leave', info, seed_set, leech_set, offers, peer, session}: with a
    -- session, only if the listing is still that association's.
    local go = true
    if op[7] ~= '' then
      local listing = redis.call('HGET', KEYS[op[2]], op[6])
      go = listing and cjson.decode(listing)[2] == op[7]
    end
    if go then
      redis.call('SREM', KEYS[op[3]], op[6])
      redis.call('SREM', KEYS[op[4]], op[6])
      redis.call('HDEL', KEYS[op[2]], op[6])
      redis.call('DEL', KEYS[op[5]])
    end
  elseif c == 'opush' then
    -- {'opush', offers, element, offer_id, cap, px}: replace the same id,
    -- keep the newest ``cap``.
    local k = KEYS[op[2]]
    for _, e in ipairs(redis.call('LRANGE', k, 0, -1)) do
      if cjson.decode(e)[2] == op[4] then redis.call('LREM', k, 1, e) end
    end
    redis.call('RPUSH', k, op[3])
    redis.call('LTRIM', k, -tonumber(op[5]), -1)
    if redis.call('PTTL', k) < tonumber(op[6]) then redis.call('PEXPIRE', k, op[6]) end
  elseif c == 'oback' then
    -- {'oback', offers, element, px}: an offer taken and not handed out.
    local k = KEYS[op[2]]
    redis.call('LPUSH', k, op[3])
    if redis.call('PTTL', k) < tonumber(op[4]) then redis.call('PEXPIRE', k, op[4]) end
  elseif c == 'zadd_lt' then
    redis.call('ZADD', KEYS[op[2]], 'LT', op[3], op[4])
  elseif c == 'zadd' then
    redis.call('ZADD', KEYS[op[2]], op[3], op[4])
  elseif c == 'zrem' then
    redis.call('ZREM', KEYS[op[2]], op[3])
  end
end
return 1
"""

# JOIN/FIND step 1 on the swarm's slot: a random sample of each mode set
# (SRANDMEMBER: O(k)), the sampled members' listing records, and - when
# ARGV[4] is '1' - each member's oldest unexpired offer, taken (consume-once).
# KEYS: seed set, leech set, listing hash. ARGV: requester, k seed, k leech,
# take, now, offer key prefix. Returns {seeds, leeches, listings, offers}
# with '' where a member has no listing or offer.
SAMPLE = r"""
local seeds, leeches = {}, {}
local k_seed, k_leech = tonumber(ARGV[2]), tonumber(ARGV[3])
if k_seed > 0 then seeds = redis.call('SRANDMEMBER', KEYS[1], k_seed) end
if k_leech > 0 then leeches = redis.call('SRANDMEMBER', KEYS[2], k_leech) end
local ids = {}
for _, id in ipairs(seeds) do ids[#ids + 1] = id end
for _, id in ipairs(leeches) do ids[#ids + 1] = id end
local listings, offers = {}, {}
if #ids > 0 then
  local got = redis.call('HMGET', KEYS[3], unpack(ids))
  local now = tonumber(ARGV[5])
  for i, id in ipairs(ids) do
    listings[i] = got[i] or ''
    offers[i] = ''
    if ARGV[4] == '1' and id ~= ARGV[1] and got[i] then
      local key = ARGV[6] .. id
      local e = redis.call('LPOP', key)
      while e do
        if cjson.decode(e)[1] > now then offers[i] = e break end
        e = redis.call('LPOP', key)
      end
    end
  end
end
return {seeds, leeches, listings, offers}
"""

# ATTACH step 1 on the swarm's slot: the target's listing record, and the
# grant of the named offer if it was made to this requester (taken).
# KEYS: listing hash, grant key. ARGV: target, requester.
ATTACH = r"""
local listing = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local grant = ''
if KEYS[2] then
  local g = redis.call('GET', KEYS[2])
  if g and cjson.decode(g)[1] == ARGV[2] then
    redis.call('DEL', KEYS[2])
    grant = g
  end
end
return {listing, grant}
"""

# Expiry: claim up to ARGV[2] peers whose deadline is <= ARGV[1] from one
# bucket, leasing them until ARGV[3] so that one node handles each; a node
# that dies holding a lease just lets it run out (PROTOCOL §9).
CLAIM = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
"""
