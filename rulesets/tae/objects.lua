-- TaE objects (tae.md 1-3, 5, 6): the object types, the markers
-- (resources), the ship properties, components and designs, the new game
-- and the players who join, their fleets and the shared bag of colonist
-- ships.
--
-- ctx.state: rng (the MT19937 state), bag (ships left by passenger type
-- 1-4), players[id] = { scores = { Money, Technology, People, Raw
-- Materials, Alien Artifacts }, home = system id }, hidden_design (what
-- opponents see of a colonist ship), player_turn, conflicts, combat,
-- game_over (turn.lua).
--
-- Fleet data: kind ("colonist", "leader", "bomber"), ptype (1 merchant,
-- 2 scientist, 3 settler, 4 mining; colonists and leaders), ships = { {
-- design, count = 1 } } (a design of its own), damage = 0, consumed (set
-- when its order used it up; removed at the end of the turn).
return function(tae)
    local board = tae.board
    local M = {}

    M.PTYPES = { "Merchant", "Scientist", "Settler", "Mining" }
    M.CATEGORIES = { "Money", "Technology", "People", "Raw Materials",
                     "Alien Artifacts" }
    M.LEADER_TITLES = { "Merchant Leader", "Lead Scientist",
                        "Government Official", "Mining Foreman" }
    M.COLONISTS = 6

    -- ---------------------------------------------------- object types

    local function positional(velocity)
        local params = {
            { name = "Position", type = "position",
              description = "The position of the object" } }
        if velocity then
            params[#params + 1] = { name = "Velocity", type = "velocity",
                description = "The velocity of the object" }
        end
        params[#params + 1] = { name = "Size", type = "size",
                                description = "The size of the object" }
        return { name = "Positional", description = "Positional information",
                 params = params }
    end
    local function ownership()
        return { name = "Ownership", description = "The owner of the object",
                 params = { { name = "Owner", type = "reference",
                              reftype = 7, description = "The owner" } } }
    end
    local function orders()
        return { name = "Orders", description = "The order queue",
                 params = { { name = "Order Queue", type = "order_queue",
                              description = "The queue of orders" } } }
    end

    -- Opponents see a colonist ship as the hidden design (3).
    local function ship_list(obj, player_id, ctx)
        local refs = {}
        for _, s in ipairs(obj.data.ships or {}) do
            local id = s.design
            if obj.data.kind == "colonist" and obj.owner ~= player_id then
                id = ctx.state.hidden_design
            end
            refs[#refs + 1] = { reftype = 9, id = id, count = s.count }
        end
        return { references = refs }
    end

    -- The same for TP03 clients.
    local function tp03_fleet(obj, player_id, ctx)
        local ships = {}
        for _, r in ipairs(ship_list(obj, player_id, ctx).references) do
            ships[#ships + 1] = { type = r.id, count = r.count }
        end
        return { age = ctx.turn or 0,
                 owner = obj.owner ~= 0 and obj.owner or -1,
                 resources = {}, ships = ships, damage = 0,
                 endx = 0, endy = 0, endz = 0 }
    end

    M.TYPES = {
        { name = "Universe", description = "The Universe", tp03 = "universe",
          groups = { positional(true),
              { name = "Informational", description = "The game's year",
                params = { { name = "Year", type = "integer", field = "year",
                             description = "The current year (turn)" } } } } },
        { name = "Galaxy", description = "The galaxy", tp03 = "galaxy",
          groups = { positional(false) } },
        { name = "Star System", description = "A square of the board",
          tp03 = "star_system",
          groups = { positional(false),
              { name = "Status", description = "The square's state",
                params = {
                    { name = "Inhabitable", type = "integer",
                      field = "inhabitable",
                      description = "1: colonists other than mining "
                                    .. "robots may settle" },
                    { name = "Destroyed", type = "integer",
                      field = "destroyed", description = "1: bombed" },
                    { name = "Region", type = "integer", field = "region",
                      description = "The region's id (0: none)" } } } } },
        { name = "Planet", description = "A square's planet and its markers",
          tp03 = "planet",
          groups = { positional(false), ownership(), orders(),
              { name = "Resources", description = "The markers",
                params = { { name = "Resource List", type = "resource_list",
                             description = "The markers on the planet" } } },
          } },
        { name = "Fleet", description = "A fleet of one ship",
          tp03 = { kind = "fleet", extra = tp03_fleet },
          groups = { positional(true), ownership(), orders(),
              { name = "Ships", description = "The ship of the fleet",
                params = {
                    { name = "Ship List", type = "reference_quantity_list",
                      get = ship_list, description = "The ship" },
                    { name = "Damage", type = "integer", field = "damage",
                      description = "Unused" } } } } },
    }

    -- ---------------------------------------------------- resources

    local function res(id, name, plural, desc)
        return { id = id, name = name, name_plural = plural,
                 unit = "", unit_plural = "", description = desc }
    end
    M.resources = {
        res(1, "Uninhabitable planet", "Uninhabitable planets",
            "Only mining robots may colonise this square"),
        res(2, "Destroyed Star System", "Destroyed Star Systems",
            "The square was bombed"),
        res(3, "Alien Artifact", "Alien Artifacts", "A treasure"),
        res(4, "Monetary Asset", "Monetary Assets", "A merchant colony"),
        res(5, "Technological Advancement", "Technological Advancements",
            "A science colony"),
        res(6, "Team of People", "Teams of People", "A settler colony"),
        res(7, "Raw Material", "Raw Materials", "A mining colony"),
    }

    -- ---------------------------------------------------- designs

    M.categories = { { id = 1, name = "Ships",
                       description = "Ship components and designs" } }

    local PASSENGER_NAMES = { "Merchants", "Scientists", "Settlers",
        "Mining Robots", "Merchant Leader", "Lead Scientist",
        "Government Official", "Mining Foreman" }

    M.properties = {
        { id = 1, name = "Passengers", displayname = "Passengers", rank = 0,
          categories = { 1 }, description = "Who the ship carries",
          display = function(n)
              return PASSENGER_NAMES[n] or tostring(n)
          end },
        { id = 2, name = "Bombs", displayname = "Bombs", rank = 0,
          categories = { 1 }, description = "The ship's bombs",
          display = function(n) return string.format("%d bombs", n) end },
    }

    local function only_one(ctx, design)
        local n = 0
        for _, c in ipairs(design.components or {}) do
            n = n + (c.count or 0)
        end
        if n == 1 then
            return true
        end
        return false, "A ship holds exactly one component"
    end

    local COMPONENT_NAMES = { "MerchantCargo", "ScientistCargo",
        "SettlerCargo", "MiningCargo", "MerchantLeaderCargo",
        "ScientistLeaderCargo", "SettlerLeaderCargo", "MiningLeaderCargo" }
    M.components = {}
    for i, name in ipairs(COMPONENT_NAMES) do
        M.components[i] = { id = i, name = name, categories = { 1 },
            description = "Carries " .. PASSENGER_NAMES[i],
            properties = { Passengers = i }, requirements = only_one }
    end
    M.components[9] = { id = 9, name = "Weapon", categories = { 1 },
        description = "A bomb", properties = { Bombs = 1 },
        requirements = only_one }

    local DESIGN_NAMES = { "MerchantShip", "ScientistShip", "SettlerShip",
        "MiningShip", "MerchantLeaderShip", "ScientistLeaderShip",
        "SettlerLeaderShip", "MiningLeaderShip", [9] = "Bomber" }
    local PASSENGER_DESIGN = {}
    for i = 1, 4 do
        PASSENGER_DESIGN[DESIGN_NAMES[i]] = true
    end

    -- Owners see their designs; others see leaders and bombers, and
    -- colonist ships only as the hidden design (owner 0).
    function M.design_visible(ctx, player_id, design)
        return design.owner == player_id or design.owner == 0 or
               not PASSENGER_DESIGN[design.name]
    end

    -- ---------------------------------------------------- the bag

    -- Draws a passenger type (1-4) from the bag with the game's
    -- generator, or nil when the bag is empty.
    function M.draw(ctx)
        local bag = ctx.state.bag
        if bag[1] + bag[2] + bag[3] + bag[4] == 0 then
            return nil
        end
        local g = ctx.random.restore(ctx.state.rng)
        local t
        repeat
            t = g:range(0, 3) + 1
        until bag[t] > 0
        bag[t] = bag[t] - 1
        ctx.state.rng = g:state()
        ctx:state_changed()
        return t
    end

    -- ---------------------------------------------------- fleets

    function M.info(ctx, player_id)
        return ctx.state.players[tostring(player_id)]
    end

    function M.fleets(ctx, player_id, kind)
        local out = {}
        for o in ctx:each_object("Fleet") do
            if o.owner == player_id and not o.data.consumed and
               (not kind or o.data.kind == kind) then
                out[#out + 1] = o
            end
        end
        return out
    end

    -- The orders a fleet takes on a normal turn.
    function M.normal_orders(fleet)
        local d = fleet.data
        if d.kind == "colonist" then
            return { d.ptype == 4 and "ColonizeMining" or "Colonize" }
        elseif d.kind == "leader" then
            return { "Move" }
        end
        return { "Attack" }
    end

    local function new_fleet(ctx, player_id, name, kind, ptype, component)
        local info = M.info(ctx, player_id)
        local home = ctx:object(info.home)
        local d = ctx:new_design { name = DESIGN_NAMES[component],
            description = name .. " of " .. ctx:player(player_id).name,
            owner = player_id, categories = { 1 },
            components = { { id = component, count = 1 } } }
        local f = ctx:new_object { type = "Fleet", name = name,
            parent = home.id, owner = player_id, size = 1,
            pos = { x = home.pos.x, y = home.pos.y, z = 0 },
            data = { kind = kind, ptype = ptype, damage = 0,
                     ships = { { design = d.id, count = 1 } } } }
        local allowed = M.normal_orders(f)
        if ctx.state.combat or ctx.state.game_over then
            allowed = {}
        end
        ctx:new_queue(f, player_id, allowed)
        return f
    end

    -- Fills the player's colonist fleets up to 6 from the bag; an empty
    -- bag ends the game (8).
    function M.top_up(ctx, player_id)
        local n = #M.fleets(ctx, player_id, "colonist")
        while n < M.COLONISTS do
            local t = M.draw(ctx)
            if not t then
                ctx.state.bag_empty = true
                ctx:state_changed()
                return
            end
            new_fleet(ctx, player_id, "Colonist Fleet", "colonist", t, t)
            n = n + 1
        end
    end

    -- Sends a leader home (off the board).
    function M.send_home(ctx, leader)
        local home = ctx:object(M.info(ctx, leader.owner).home)
        ctx:set_parent(leader, home)
        leader.pos = { x = home.pos.x, y = home.pos.y, z = 0 }
        ctx:changed(leader)
    end

    -- The leaders standing on the board.
    function M.leaders_on_board(ctx)
        local out = {}
        for o in ctx:each_object("Fleet") do
            if o.data.kind == "leader" and not o.data.consumed and
               board.is_square(ctx, ctx:object(o.parent)) then
                out[#out + 1] = o
            end
        end
        return out
    end

    -- ---------------------------------------------------- new game

    function M.setup(ctx)
        local bag = ctx.settings.bag
        assert(#bag == 4, "the bag setting needs four counts")
        local seed = ctx.settings.random_seed
        if seed < 0 then
            seed = (os.time() + math.floor(os.clock() * 1000000)) %
                   4294967296
        end
        ctx.state.rng = ctx.random.new(seed):state()
        ctx.state.seed = seed
        ctx.state.bag = {}
        for i = 1, 4 do
            local n = bag[i]
            assert(type(n) == "number" and n >= 0 and n == math.floor(n),
                   "the bag setting holds whole counts >= 0")
            ctx.state.bag[i] = n
        end
        ctx.state.players = {}
        ctx.state.player_turn = 0
        ctx.state.conflicts = {}
        ctx.state.game_over = false
        ctx:state_changed()
        ctx:new_object { type = "Universe", name = "The Universe",
            parent = 0, size = 1000000000000, pos = { x = 0, y = 0, z = 0 },
            data = { year = 0 } }
        local galaxy = ctx:new_object { type = "Galaxy",
            name = "The Fertile Galaxy", parent = 0, size = 100000000000,
            pos = { x = 0, y = -6000, z = 0 } }
        board.create(ctx, galaxy)
        -- What opponents see of a colonist ship: no passengers named.
        local hidden = ctx:new_design { name = "ColonistShip",
            description = "A colonist ship (its passengers are secret)",
            owner = 0, categories = { 1 }, components = {} }
        ctx.state.hidden_design = hidden.id
        ctx:state_changed()
    end

    function M.join_allowed(ctx)
        if ctx.state.game_over then
            return false, "the game is over"
        end
        local n = 0
        for _ in pairs(ctx.state.players) do
            n = n + 1
        end
        if n >= ctx.settings.max_players then
            return false, "the game is full (" .. ctx.settings.max_players
                          .. " players)"
        end
        return true
    end

    function M.player_joined(ctx, player)
        local x = 1 + board.SPACING * player.id
        local home = ctx:new_object { type = "Star System",
            name = player.name .. "'s System", parent = 1, size = 60000,
            pos = { x = x, y = 1, z = 0 },
            data = { inhabitable = 1, destroyed = 1, region = 0 } }
        local planet = ctx:new_object { type = "Planet",
            name = player.name .. "'s Home Planet", parent = home.id,
            owner = player.id, size = 1000, pos = { x = x, y = 1, z = 0 },
            data = { resources = {} } }
        ctx:new_queue(planet, player.id, {})
        ctx.state.players[tostring(player.id)] = {
            scores = { 0, 0, 0, 0, 0 }, home = home.id }
        ctx:state_changed()
        M.top_up(ctx, player.id)
        for i = 1, 4 do
            new_fleet(ctx, player.id, M.PTYPES[i] .. " Leader", "leader", i,
                      4 + i)
        end
        new_fleet(ctx, player.id, "Bomber", "bomber", nil, 9)
        new_fleet(ctx, player.id, "Bomber", "bomber", nil, 9)
        ctx:message(player.id, "Welcome to TaE",
            "Settle colonists to grow regions, move your four leaders into "
            .. "them to score Money, Technology, People and Raw Materials, "
            .. "and collect Alien Artifacts. Two actions a turn. Your final "
            .. "score is your weakest category.")
    end

    return M
end
