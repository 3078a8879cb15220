#!lua name=tierstream
-- tierstream's domain contract (SPEC §2–§5) as a Redis 7 function library:
-- the "Redis + Lua" baseline of the benchmark suite (issue 4). It is what a
-- team would build instead of tierstream; bench/redis_baseline.cc feeds it
-- and checks it against verify/'s batch evaluator.
--
-- Functions (all with numkeys 0: they derive their keys themselves, which
-- standalone Redis allows and Redis Cluster would not):
--   FCALL ts_config 0 UTC_OFFSET_MS HV_SPEND_FEN HV_REPEAT_ORDERS NEW_DAYS ACTIVE_7D
--       Sets the day offset and tier thresholds. Refused once events exist
--       under another configuration.
--   FCALL ts_batch 0 REJECTED  ID USER TYPE TS FEN AUX  [ID USER TYPE TS FEN AUX ...]
--       Applies a batch of decoded, valid events, 6 arguments each: TYPE is
--       0..7 (message, reaction, checkin, share, join, leave, order, refund),
--       TS integer ms, FEN the integer amount in fen (orders and refunds, else
--       0), AUX the referrer_id of a join ("" if none) or "1" for a community
--       order. REJECTED adds to the events_rejected counter. Returns
--       {accepted, duplicates} of the batch.
--   FCALL_RO ts_profile 0 USER_ID
--       nil if unknown, else {as_of, member(0/1), joined_at, last_active or
--       nil, interactions_7d, interactions_30d, orders_total, orders_30d,
--       repeat_orders, spend_30d_fen, spend_total_fen, points, referrals, tier,
--       stored_tier}. `tier` is evaluated now from the buckets; `stored_tier`
--       is the one the incremental tier counts hold (they must agree).
--   FCALL_RO ts_kpis 0
--       {as_of or nil, users_total, members, left, high_value, new, active,
--       dormant, regular, mau, dau, new_members_30d, orders_30d,
--       community_orders_30d, gmv_30d_fen, refunds_30d_fen, buyers_total,
--       repeat_buyers_total, referred_joins_30d, referred_joins_prev_30d,
--       events_accepted, events_duplicate, events_rejected}. Ratios are left
--       to the caller: a Lua number in a reply is truncated to an integer.
--
-- Keys:
--   ts:cfg            hash: off, hvs, hvr, newd, act
--   ts:meta           hash: T (max accepted ts), acc, dup, rej, users, members,
--                     buyers, rbuyers, t0..t5 (users per tier)
--   ts:ids            set of every accepted event_id (no horizon: SPEC §4
--                     allows remembering longer than 7 days)
--   ts:u:<user_id>    hash, one per user: mt (ts of the latest own join/leave),
--                     ml (1 if that was a leave), fj (first own join), fo (first
--                     own event), fr (first join naming her as referrer), la
--                     (last_active), st (spend_total fen), pt, ot, rf, tr (tier
--                     0..5 as of the swept day), nc (the day the tier changes
--                     by time alone if no event comes, 0 = never), b (the day
--                     buckets of the last 30 days in day order: a MessagePack
--                     array day, interactions, orders, spend_fen, day, ... —
--                     one C call to decode, where a field per day cost a Lua
--                     string parse each).
--   ts:sched          zset: user_id scored by nc (users whose tier changes by
--                     time alone when D reaches that day)
--   ts:la, ts:jd      hashes day -> members whose last_active / joined_at is
--                     on that day (mau, dau, new_members_30d)
--   ts:kd:<day>       hash per event day: o (orders), c (community orders),
--                     g (gmv fen), r (refunds fen), j (referred joins)
--
-- Every batch ends with D = day(T) swept: each user whose nc <= D is
-- re-evaluated, so the tier counts are exact as of T between calls.
--
-- Numbers: Lua 5.1 numbers are doubles, exact for integers below 2^53; fen
-- sums stay exact below 2^53 fen (about 9e13 yuan). Integers are written
-- back with "%d" (tostring would switch to exponent notation past 14 digits).

local DAY_MS = 86400000
local W7, W30 = 7, 30
local TIER_NAMES = {[0] = 'left', 'high_value', 'new', 'active', 'dormant', 'regular'}
local POINTS = {[0] = 1, 1, 2, 3}  -- message, reaction, checkin, share
-- The hash fields of a user, in HMGET order; `b` (buckets) is last.
local FIELDS = {'mt', 'ml', 'fj', 'fo', 'fr', 'la', 'st', 'pt', 'ot', 'rf', 'tr', 'nc', 'b'}
local NSCALARS = #FIELDS - 1

local function fmt(n) return string.format('%d', n) end

-- redis.call(cmd, key, list...) in chunks, since unpack() stops at about
-- 8000 values; concatenates array replies. CHUNK is even to keep the
-- score-member pairs of ZADD together.
local CHUNK = 4000
local function call_list(cmd, key, list)
  local out = {}
  for i = 1, #list, CHUNK do
    local r = redis.call(cmd, key, unpack(list, i, math.min(#list, i + CHUNK - 1)))
    if type(r) == 'table' then
      for _, v in ipairs(r) do out[#out + 1] = v end
    end
  end
  return out
end

local function load_config()
  local c = redis.call('HMGET', 'ts:cfg', 'off', 'hvs', 'hvr', 'newd', 'act')
  if not c[1] then return redis.error_reply('tierstream: ts_config was never called') end
  return {off = tonumber(c[1]), hvs = tonumber(c[2]), hvr = tonumber(c[3]),
          newd = tonumber(c[4]), act = tonumber(c[5])}
end

local function day_of(ts, cfg) return math.floor((ts + cfg.off) / DAY_MS) end

local function is_member(u) return u.mt == nil or u.ml ~= 1 end
local function joined_at(u) return u.fj or u.fo or u.fr end

-- A user from her HMGET FIELDS reply; nil when she has no hash. u.b is the
-- flat bucket array {day, interactions, orders, spend_fen, day, ...}.
local function parse_user(v)
  if not v[NSCALARS] then return nil end  -- nc is always written
  local u = {}
  for k = 1, NSCALARS do
    if v[k] then u[FIELDS[k]] = tonumber(v[k]) end
  end
  u.b = v[NSCALARS + 1] and cmsgpack.unpack(v[NSCALARS + 1]) or {}
  return u
end

local function read_user(uid)
  return parse_user(redis.call('HMGET', 'ts:u:' .. uid, unpack(FIELDS)))
end

-- interactions_7d, interactions_30d, orders_30d, spend_30d as of day D.
local function windows(u, D)
  local i7, i30, o30, s30 = 0, 0, 0, 0
  local b = u.b
  for k = 1, #b, 4 do
    local d = b[k]
    if d > D - W30 and d <= D then
      i30 = i30 + b[k + 1]
      o30 = o30 + b[k + 2]
      s30 = s30 + b[k + 3]
      if d > D - W7 then i7 = i7 + b[k + 1] end
    end
  end
  return i7, i30, o30, s30
end

-- SPEC §3 tiers of a member, in order, from their inputs; returns the tier
-- index 1..5 (0, `left`, is decided before).
local function member_tier(s30, rep, is_new, i7, cfg)
  if s30 >= cfg.hvs and rep >= cfg.hvr then return 1 end
  if is_new then return 2 end
  if i7 >= cfg.act then return 3 end
  if i7 == 0 then return 4 end
  return 5
end

local function repeat_orders(u) return u.ot > 0 and u.ot - 1 or 0 end

-- The tier as of D, from interactions_7d i7 and spend_30d s30 as of D.
local function evaluate_tier(u, D, i7, s30, cfg)
  if not is_member(u) then return 0 end
  return member_tier(s30, repeat_orders(u), D - day_of(joined_at(u), cfg) < cfg.newd, i7, cfg)
end

-- The first day after D on which the tier differs from `tier` (the tier as
-- of D, from interactions_7d i7 and spend_30d s30) if no new event comes; 0 when never. Without events the inputs
-- change only when a bucket leaves the 7- or 30-day window or the user stops
-- being new: one walk over the day-ordered buckets visits those days in
-- order. Scheduling the day of an actual change, not of every possible one,
-- spares the sweep the daily re-evaluation of every active member.
local function next_tier_change(u, D, tier, i7, s30, cfg)
  if tier == 0 then return 0 end  -- `left` does not change with time
  local b, n = u.b, #u.b
  local rep = repeat_orders(u)
  local new_end = day_of(joined_at(u), cfg) + cfg.newd  -- the first day not new
  -- p7, p30: the next bucket whose leaving its window changes i7, s30.
  local p7, p30 = 1, 1
  while p7 <= n and b[p7] <= D - W7 do p7 = p7 + 4 end
  while p30 <= n and b[p30] <= D - W30 do p30 = p30 + 4 end
  local last = D
  while true do
    while p7 <= n and b[p7 + 1] == 0 do p7 = p7 + 4 end
    while p30 <= n and b[p30 + 3] == 0 do p30 = p30 + 4 end
    local x = math.huge
    if p7 <= n then x = b[p7] + W7 end
    if p30 <= n and b[p30] + W30 < x then x = b[p30] + W30 end
    if new_end > last and new_end < x then x = new_end end
    if x == math.huge then return 0 end
    while p7 <= n and b[p7] + W7 <= x do
      i7 = i7 - b[p7 + 1]
      p7 = p7 + 4
    end
    while p30 <= n and b[p30] + W30 <= x do
      s30 = s30 - b[p30 + 3]
      p30 = p30 + 4
    end
    if member_tier(s30, rep, x < new_end, i7, cfg) ~= tier then return x end
    last = x
  end
end

-- A batch's working set: users loaded once, changed in Lua, written once.
local function new_batch(cfg)
  return {cfg = cfg, users = {}, order = {}, meta = {}, la = {}, jd = {}, kd = {},
          zadd = {}, zrem = {}}
end

local function add(t, k, v)
  if v ~= 0 then t[k] = (t[k] or 0) + v end
end

local function add_kd(batch, day, field, v)
  local t = batch.kd[day]
  if not t then
    t = {}
    batch.kd[day] = t
  end
  add(t, field, v)
end

local function load_user(batch, uid)
  local u = batch.users[uid]
  if u then return u end
  u = read_user(uid)
  if u then
    u.exists = true
  else
    u = {b = {}, exists = false, st = 0, pt = 0, ot = 0, rf = 0, nc = 0}
  end
  u.id = uid
  -- The stored values, to write back only what changed (all of a new user).
  local old = {}
  if u.exists then
    for k = 1, NSCALARS do old[k] = u[FIELDS[k]] end
  end
  u.old = old
  -- What this user contributes to the aggregates before the batch.
  u.o_member = u.exists and is_member(u)
  u.o_la = u.la
  u.o_joined = u.exists and joined_at(u) or nil
  u.o_ot = u.ot
  u.o_nc = u.nc
  batch.users[uid] = u
  batch.order[#batch.order + 1] = u
  return u
end

-- The index in u.b of day d's bucket, created if missing; u.b stays in day
-- order.
local function bucket(u, d)
  local b = u.b
  u.b_dirty = true
  local k = #b - 3
  while k >= 1 and b[k] > d do k = k - 4 end  -- most events land on the newest day
  if k >= 1 and b[k] == d then return k end
  local pos = k + 4
  for j = #b, pos, -1 do b[j + 4] = b[j] end
  b[pos], b[pos + 1], b[pos + 2], b[pos + 3] = d, 0, 0, 0
  return pos
end

-- One accepted event of the user's own (SPEC §3), `D` = day(T) including it.
local function apply_own(batch, u, t, ts, fen, aux, D)
  local cfg = batch.cfg
  if u.fo == nil or ts < u.fo then u.fo = ts end
  local d = day_of(ts, cfg)
  local in_window = d > D - W30  -- an older event can never re-enter a window
  if t <= 3 then
    u.pt = u.pt + POINTS[t]
    if u.la == nil or ts > u.la then u.la = ts end
    if in_window then
      local k = bucket(u, d) + 1
      u.b[k] = u.b[k] + 1
    end
  elseif t == 4 or t == 5 then
    local leave = t == 5
    if not leave and (u.fj == nil or ts < u.fj) then u.fj = ts end
    -- The latest membership event wins; on equal ts a leave wins.
    if u.mt == nil or ts > u.mt or (ts == u.mt and leave) then
      u.mt = ts
      u.ml = leave and 1 or 0
    end
  elseif t == 6 then
    u.pt = u.pt + math.floor(fen / 100)
    if u.la == nil or ts > u.la then u.la = ts end
    u.ot = u.ot + 1
    u.st = u.st + fen
    if in_window then
      local k = bucket(u, d)
      u.b[k + 2] = u.b[k + 2] + 1
      u.b[k + 3] = u.b[k + 3] + fen
    end
    add_kd(batch, d, 'o', 1)
    if aux == '1' then add_kd(batch, d, 'c', 1) end
    add_kd(batch, d, 'g', fen)
  elseif t == 7 then
    u.pt = u.pt - math.floor(fen / 100)
    u.st = u.st - fen
    if in_window then
      local k = bucket(u, d) + 3
      u.b[k] = u.b[k] - fen
    end
    add_kd(batch, d, 'r', fen)
  end
end

local function apply_referral(batch, r, ts)
  r.rf = r.rf + 1
  r.pt = r.pt + 10
  if r.fr == nil or ts < r.fr then r.fr = ts end
  add_kd(batch, day_of(ts, batch.cfg), 'j', 1)
end

-- Drops the buckets that left the 30-day window ending on D (a prefix).
local function prune(u, D)
  local b = u.b
  local first = 1
  while first <= #b and b[first] <= D - W30 do first = first + 4 end
  if first == 1 then return end
  local kept = {}
  for k = first, #b do kept[#kept + 1] = b[k] end
  u.b = kept
  u.b_dirty = true
end

-- Re-evaluates a loaded user as of D, writes back what changed and records
-- what she changes in the aggregates.
local function finish_user(batch, u, D)
  local cfg = batch.cfg
  prune(u, D)
  local member = is_member(u)
  local i7, _, _, s30 = windows(u, D)
  local tier = evaluate_tier(u, D, i7, s30, cfg)
  local nc = next_tier_change(u, D, tier, i7, s30, cfg)

  local meta = batch.meta
  if not u.exists then add(meta, 'users', 1) end
  add(meta, 'members', (member and 1 or 0) - (u.o_member and 1 or 0))
  add(meta, 'buyers', (u.ot >= 1 and 1 or 0) - (u.o_ot >= 1 and 1 or 0))
  add(meta, 'rbuyers', (u.ot >= 2 and 1 or 0) - (u.o_ot >= 2 and 1 or 0))
  if u.tr ~= tier then
    if u.tr then add(meta, 't' .. u.tr, -1) end
    add(meta, 't' .. tier, 1)
  end
  if u.o_member and u.o_la then add(batch.la, day_of(u.o_la, cfg), -1) end
  if member and u.la then add(batch.la, day_of(u.la, cfg), 1) end
  if u.o_member then add(batch.jd, day_of(u.o_joined, cfg), -1) end
  if member then add(batch.jd, day_of(joined_at(u), cfg), 1) end

  u.tr = tier
  u.nc = nc
  local args = {}
  local old = u.old
  for k = 1, NSCALARS do
    local v = u[FIELDS[k]]
    if v ~= nil and v ~= old[k] then
      args[#args + 1] = FIELDS[k]
      args[#args + 1] = fmt(v)
    end
  end
  if u.b_dirty then
    args[#args + 1] = 'b'
    args[#args + 1] = cmsgpack.pack(u.b)
  end
  if #args > 0 then redis.call('HSET', 'ts:u:' .. u.id, unpack(args)) end
  if nc ~= u.o_nc then
    if nc ~= 0 then
      local z = batch.zadd
      z[#z + 1] = fmt(nc)
      z[#z + 1] = u.id
    else
      batch.zrem[#batch.zrem + 1] = u.id
    end
  end
end

-- Adds each nonzero delta of `t` (field -> delta; day fields are numbers).
local function flush_hist(key, t)
  for k, v in pairs(t) do
    if v ~= 0 then redis.call('HINCRBY', key, type(k) == 'number' and fmt(k) or k, fmt(v)) end
  end
end

local function ts_config(_, args)
  local want = {off = args[1], hvs = args[2], hvr = args[3], newd = args[4], act = args[5]}
  for k, v in pairs(want) do
    if v == nil or not string.match(v, '^%-?%d+$') then
      return redis.error_reply('tierstream: ts_config ' .. k .. ': expected an integer')
    end
  end
  if redis.call('EXISTS', 'ts:meta') == 1 then
    local have = redis.call('HMGET', 'ts:cfg', 'off', 'hvs', 'hvr', 'newd', 'act')
    if have[1] ~= want.off or have[2] ~= want.hvs or have[3] ~= want.hvr or
       have[4] ~= want.newd or have[5] ~= want.act then
      return redis.error_reply('tierstream: events exist under another configuration')
    end
    return 'OK'
  end
  redis.call('HSET', 'ts:cfg', 'off', want.off, 'hvs', want.hvs, 'hvr', want.hvr,
             'newd', want.newd, 'act', want.act)
  return 'OK'
end

local function ts_batch(_, args)
  local cfg = load_config()
  if cfg.err then return cfg end
  local n = #args
  if n < 1 or (n - 1) % 6 ~= 0 then
    return redis.error_reply('tierstream: ts_batch: REJECTED then 6 arguments per event')
  end
  local batch = new_batch(cfg)
  local T = tonumber(redis.call('HGET', 'ts:meta', 'T'))
  -- Duplicates: ids seen by earlier batches, then within this one.
  local ids = {}
  for k = 2, n, 6 do ids[#ids + 1] = args[k] end
  local seen = call_list('SMISMEMBER', 'ts:ids', ids)
  local fresh, in_batch = {}, {}
  local accepted, duplicates = 0, 0
  for k = 2, n, 6 do
    local id, uid, t, ts, fen, aux =
        args[k], args[k + 1], tonumber(args[k + 2]), tonumber(args[k + 3]),
        tonumber(args[k + 4]), args[k + 5]
    if t == nil or t < 0 or t > 7 or ts == nil or fen == nil then
      return redis.error_reply('tierstream: ts_batch: bad event at argument ' .. k)
    end
    if seen[(k + 4) / 6] == 1 or in_batch[id] then
      duplicates = duplicates + 1
    else
      in_batch[id] = true
      fresh[#fresh + 1] = id
      accepted = accepted + 1
      if T == nil or ts > T then T = ts end
      local D = day_of(T, cfg)
      apply_own(batch, load_user(batch, uid), t, ts, fen, aux, D)
      if t == 4 and aux ~= '' and aux ~= uid then
        apply_referral(batch, load_user(batch, aux), ts)
      end
    end
  end
  call_list('SADD', 'ts:ids', fresh)
  add(batch.meta, 'acc', accepted)
  add(batch.meta, 'dup', duplicates)
  add(batch.meta, 'rej', tonumber(args[1]) or 0)
  if T ~= nil then
    local D = day_of(T, cfg)
    -- Users whose tier changes by time alone between the last sweep and D.
    for _, uid in ipairs(redis.call('ZRANGEBYSCORE', 'ts:sched', '-inf', D)) do
      load_user(batch, uid)
    end
    for _, u in ipairs(batch.order) do finish_user(batch, u, D) end
    call_list('ZADD', 'ts:sched', batch.zadd)
    call_list('ZREM', 'ts:sched', batch.zrem)
    redis.call('HSET', 'ts:meta', 'T', fmt(T))
  end
  flush_hist('ts:meta', batch.meta)
  flush_hist('ts:la', batch.la)
  flush_hist('ts:jd', batch.jd)
  for day, t in pairs(batch.kd) do flush_hist('ts:kd:' .. fmt(day), t) end
  return {accepted, duplicates}
end

local function ts_profile(_, args)
  local u = read_user(args[1])
  if not u then return false end
  local cfg = load_config()
  if cfg.err then return cfg end
  local T = tonumber(redis.call('HGET', 'ts:meta', 'T'))
  local D = day_of(T, cfg)
  local i7, i30, o30, s30 = windows(u, D)
  return {T, is_member(u) and 1 or 0, joined_at(u), u.la or false, i7, i30, u.ot, o30,
          repeat_orders(u), s30, u.st, u.pt, u.rf,
          TIER_NAMES[evaluate_tier(u, D, i7, s30, cfg)], TIER_NAMES[u.tr]}
end

local function sum_fields(key, from, to)
  local fields = {}
  for d = from, to do fields[#fields + 1] = fmt(d) end
  local s = 0
  for _, v in ipairs(redis.call('HMGET', key, unpack(fields))) do
    if v then s = s + tonumber(v) end
  end
  return s
end

local function ts_kpis(_, _)
  local m = redis.call('HMGET', 'ts:meta', 'T', 'users', 'members', 't0', 't1', 't2', 't3',
                       't4', 't5', 'buyers', 'rbuyers', 'acc', 'dup', 'rej')
  for k = 2, #m do m[k] = tonumber(m[k]) or 0 end
  local T = tonumber(m[1])
  local mau, dau, new30, o30, c30, g30, r30, j30, jprev = 0, 0, 0, 0, 0, 0, 0, 0, 0
  if T ~= nil then
    local cfg = load_config()
    if cfg.err then return cfg end
    local D = day_of(T, cfg)
    mau = sum_fields('ts:la', D - W30 + 1, D)
    dau = sum_fields('ts:la', D, D)
    new30 = sum_fields('ts:jd', D - W30 + 1, D)
    for d = D - 2 * W30 + 1, D do
      local v = redis.call('HMGET', 'ts:kd:' .. fmt(d), 'o', 'c', 'g', 'r', 'j')
      local j = tonumber(v[5]) or 0
      if d > D - W30 then
        o30 = o30 + (tonumber(v[1]) or 0)
        c30 = c30 + (tonumber(v[2]) or 0)
        g30 = g30 + (tonumber(v[3]) or 0)
        r30 = r30 + (tonumber(v[4]) or 0)
        j30 = j30 + j
      else
        jprev = jprev + j
      end
    end
  end
  return {T or false, m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9], mau, dau, new30, o30, c30,
          g30, r30, m[10], m[11], j30, jprev, m[12], m[13], m[14]}
end

redis.register_function('ts_config', ts_config)
redis.register_function('ts_batch', ts_batch)
redis.register_function{function_name = 'ts_profile', callback = ts_profile, flags = {'no-writes'}}
redis.register_function{function_name = 'ts_kpis', callback = ts_kpis, flags = {'no-writes'}}
