// The page of a Thousand Parsec game (docs/http.md): the game and its
// players for anyone, a player's galaxy and orders once logged in, and
// the whole universe turn by turn for spectators when the server lets
// them. Live through the event stream (GET api/events).

import { api, ApiError, setCsrf } from './api.js';
import { GalaxyMap } from './map.js';
import { OrderPanel } from './orders.js';
import { Boards } from './boards.js';
import { h, clear, fmtDuration, fmtInt, fmtCoords, objectParamText } from './format.js';

const $ = (id) => document.getElementById(id);

// Set once per page load: a test can tell that the page was not reloaded.
window.tpLoadId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;

const state = {
  game: null,
  deadline: null,          // performance.now() seconds at which the turn ends
  paused: false,
  players: [],
  session: null,           // {player: {id, name}, csrf}
  mode: 'front',           // 'front', 'play' (logged in) or 'watch' (spectator)
  objects: new Map(),      // id -> object
  maxModtime: -1,
  selected: null,
  ordertypes: new Map(),
  designs: new Map(),
  resources: new Map(),
  queues: new Map(),       // object id -> {allowed, orders}
  history: null,           // {first, last} while watching
  watchTurn: null,
  fitted: false,
  lastEventId: null,
  turnEnding: false,
  title: '',
  unread: 0,               // unread messages on the player's boards
};

// ------------------------------------------------------------ names

const names = {
  object: (id) => state.objects.get(id)?.name,
  player: (id) => state.players.find((p) => p.id === id)?.name,
  design: (id) => state.designs.get(id)?.name,
  resource: (id) => state.resources.get(id)?.name,
  ordertype: (id) => state.ordertypes.get(id)?.name,
};

const myId = () => state.session?.player?.id ?? null;

// ------------------------------------------------------------ notices

let noticeTimer = null;
function notice(text, kind = 'info', seconds = 6) {
  const n = $('notice');
  clearTimeout(noticeTimer);
  if (!text) {
    n.hidden = true;
    return;
  }
  n.textContent = text;
  n.className = `notice ${kind}`;
  n.hidden = false;
  if (seconds) {
    noticeTimer = setTimeout(() => { n.hidden = true; }, seconds * 1000);
  }
}

// An API error that says the login has gone (expired, server restarted).
function sessionLost(err) {
  if (err instanceof ApiError && err.status === 401 && state.mode === 'play') {
    leaveSession('Your login has expired: please log in again.');
    return true;
  }
  return false;
}

// ------------------------------------------------------------ the game

async function refreshGame() {
  let g;
  try {
    g = await api('GET', 'api/game');
  } catch (err) {
    notice(`Cannot read the game: ${err.message}`, 'error', 0);
    return;
  }
  state.game = g;
  setCountdown(g.seconds_left, g.paused);
  renderGame();
  showSignup(g);
}

function updateTitle() {
  const n = state.unread || 0;
  document.title = (n > 0 ? `(${n}) ` : '') + (state.title || 'Thousand Parsec');
}

function setCountdown(secondsLeft, paused = state.paused) {
  state.paused = !!paused;
  state.deadline = typeof secondsLeft === 'number' && secondsLeft >= 0
    ? performance.now() / 1000 + secondsLeft : null;
  tick();
}

function secondsLeft() {
  return state.deadline === null ? null : Math.max(0, state.deadline - performance.now() / 1000);
}

function tick() {
  const el = $('countdown');
  const left = secondsLeft();
  let text;
  if (state.game && state.game.over) {
    text = 'game over';
  } else if (state.paused) {
    text = 'paused';
  } else if (left === null) {
    text = 'no time limit';
  } else if (left <= 0 || state.turnEnding) {
    text = 'turn ending…';
  } else {
    text = fmtDuration(Math.ceil(left));
  }
  if (el.textContent !== text) {
    el.textContent = text;
  }
  el.dataset.seconds = left === null ? '' : String(Math.ceil(left));
  el.classList.toggle('soon', left !== null && left < 60 && !state.paused);
}

function turnText(g) {
  return g.turn_name ? g.turn_name : `Turn ${g.turn}`;
}

function renderGame() {
  const g = state.game;
  if (!g) return;
  $('game-name').textContent = g.name;
  state.title = `${g.name} – Thousand Parsec`;
  updateTitle();
  $('game-ruleset').textContent = `${g.ruleset.name} ${g.ruleset.version}`;
  $('game-turn').textContent = turnText(g);
  $('game-turn').dataset.turn = String(g.turn);
  $('server-version').textContent = `${g.server.name} ${g.server.version}`;
  const comment = $('game-comment');
  comment.hidden = !g.comment;
  comment.textContent = g.comment || '';

  const modes = {
    fixed: 'every turn lasts its full time',
    players_finished: 'a turn ends when every player has finished, or when its time is up',
    threshold: 'a turn ends when enough players have finished, or when its time is up',
    manual: 'the admin ends each turn',
  };
  const facts = [
    ['Ruleset', `${g.ruleset.name} ${g.ruleset.version}`],
    ['Turn', turnText(g)],
    (g.turn_schedule || []).length
      ? ['Turns end at', `${g.turn_schedule.join(', ')} (${g.turn_timezone})`]
      : ['Turn length', g.turn_length > 0 ? fmtDuration(g.turn_length) : 'no limit'],
    ['Turns end', modes[g.turn_mode] || g.turn_mode],
    ['Players', fmtInt(g.players)],
    ['Objects', fmtInt(g.objects)],
    ['Server', `${g.server.name} ${g.server.version}`],
  ];
  if (g.admin) facts.push(['Admin', g.admin]);
  if (g.paused) facts.push(['State', 'paused']);
  const dl = clear($('game-info'));
  for (const [k, v] of facts) {
    dl.append(h('dt', {}, k), h('dd', {}, v));
  }

  for (const listId of ['listeners', 'side-listeners']) {
    const ul = clear($(listId));
    for (const url of g.listeners || []) {
      ul.append(h('li', {}, h('code', {}, url)));
    }
    if (!(g.listeners || []).length) {
      ul.append(h('li', { class: 'hint' }, 'This server takes no TP clients.'));
    }
  }

  $('spectate-on').hidden = !g.spectators;
  $('spectate-off').hidden = !!g.spectators;
  $('admin-link').hidden = g.admin_ui !== true;
  renderOver();
}

// The end of the game: why, who won, and everyone's final score.
function renderOver() {
  const g = state.game;
  const over = g && g.over;
  $('over-card').hidden = !over;
  if (!over) return;
  const won = over.winners.length ? ` Won by ${over.winners.join(', ')}.` : '';
  $('over-reason').textContent = `After turn ${over.turn}: ${over.reason}.${won}`;
  const body = clear($('final-scores'));
  const ranked = [...(state.players || [])].sort((a, b) => (b.score || 0) - (a.score || 0));
  for (const p of ranked) {
    body.append(h('tr', { class: over.winners.includes(p.name) ? 'player winner' : 'player' },
      h('td', { class: 'pname' }, p.name),
      h('td', { class: 'pscore' }, p.score === null || p.score === undefined ? '–' : fmtInt(p.score))));
  }
}

// ------------------------------------------------------------ players

async function refreshPlayers() {
  try {
    state.players = await api('GET', 'api/players');
  } catch (err) {
    return;
  }
  renderPlayers();
}

function renderPlayers() {
  const me = myId();
  for (const [tbodyId, short] of [['players', false], ['side-players', true]]) {
    const body = clear($(tbodyId));
    for (const p of state.players) {
      const ended = !!(state.game && state.game.over);
      const status = !p.alive ? 'out' : p.idle ? 'idle' : ended ? 'ended' : p.finished ? 'finished' : 'playing';
      body.append(h('tr', { class: `player ${status}${p.id === me ? ' me' : ''}`, dataset: { player: p.id } },
        h('td', { class: 'pname' }, h('span', { class: 'swatch', dataset: { color: colorIndex(p.id) } }),
          p.name, p.id === me ? ' (you)' : '', p.ai ? ' (AI)' : ''),
        h('td', { class: 'pstatus' }, status === 'finished' ? '✓ finished' : status),
        !short && h('td', { class: 'pscore' }, p.score === null || p.score === undefined ? '–' : fmtInt(p.score))));
    }
  }
  $('players-empty').hidden = state.players.length > 0;
  paintSwatches();
  renderFinished();
  renderOver();
}

function renderFinished() {
  const btn = $('end-turn');
  const status = $('finished-status');
  const me = state.players.find((p) => p.id === myId());
  const done = !!(me && me.finished);
  btn.disabled = done;
  btn.textContent = done ? 'Turn finished' : 'End turn';
  btn.classList.toggle('done', done);
  if (done) {
    const waiting = state.players.filter((p) => p.alive && !p.finished && !p.idle).map((p) => p.name);
    status.textContent = waiting.length
      ? `You have finished this turn. Waiting for ${waiting.join(', ')}.`
      : 'You have finished this turn.';
  } else {
    status.textContent = '';
  }
  status.dataset.finished = done ? 'true' : 'false';
}

async function endTurn() {
  const btn = $('end-turn');
  btn.disabled = true;
  try {
    const r = await api('POST', 'api/finished');
    const me = state.players.find((p) => p.id === myId());
    if (me) me.finished = true;
    renderFinished();
    if (r && r.message) notice(r.message, 'info', 4);
  } catch (err) {
    btn.disabled = false;
    if (!sessionLost(err)) notice(`End turn: ${err.describe()}`, 'error');
  }
  refreshPlayers();
}

// ------------------------------------------------------------ colours

// Own objects green, other players from a palette, unowned grey.
const OWN = '#4ade80';
const NEUTRAL = '#8a94ad';
const STAR = '#ffd36e';
const PALETTE = ['#f87171', '#60a5fa', '#f472b6', '#fb923c', '#a78bfa', '#22d3ee', '#facc15', '#e879f9'];

function colorIndex(playerId) {
  if (state.mode === 'play' && playerId === myId()) return 'own';
  return String(playerId % PALETTE.length);
}

function ownerColor(owner) {
  if (!owner) return NEUTRAL;
  if (state.mode === 'play' && owner === myId()) return OWN;
  return PALETTE[owner % PALETTE.length];
}

function paintSwatches() {
  for (const s of document.querySelectorAll('.swatch')) {
    const c = s.dataset.color;
    s.style.backgroundColor = c === 'own' ? OWN : PALETTE[Number(c)] || NEUTRAL;
  }
}

function styleOf(o) {
  const shape = { 'Star System': 'star', Planet: 'planet', Fleet: 'fleet' }[o.type_name] || 'other';
  const owned = o.owner && o.owner > 0;
  const color = shape === 'star' && !owned ? STAR : ownerColor(o.owner);
  return { shape, color, label: owned ? color : undefined };
}

function renderLegend() {
  const el = clear($('map-legend'));
  const item = (color, text, shape) => h('span', { class: 'legend-item' },
    h('span', { class: `legend-mark ${shape}`, dataset: { color } }), text);
  if (state.mode === 'play') {
    el.append(item(OWN, 'yours', 'dot'), item(PALETTE[1], 'others’', 'dot'), item(NEUTRAL, 'nobody’s', 'dot'));
  } else {
    el.append(item(PALETTE[1], 'players’', 'dot'), item(NEUTRAL, 'nobody’s', 'dot'));
  }
  el.append(item(STAR, 'star', 'star'), item(NEUTRAL, 'planet', 'dot'), item(NEUTRAL, 'fleet', 'tri'));
  for (const m of el.querySelectorAll('.legend-mark')) {
    m.style.color = m.dataset.color;
  }
}

// ------------------------------------------------------------ the map

let map = null;
let orders = null;
let boards = null;

function setupMap() {
  map = new GalaxyMap($('map'), {
    styleOf,
    onSelect: (id) => select(id, { from: 'map' }),
    onViewChange: () => updateMapStatus(),
  });
  $('zoom-in').addEventListener('click', () => map.zoomAt(1.6));
  $('zoom-out').addEventListener('click', () => map.zoomAt(1 / 1.6));
  $('zoom-fit').addEventListener('click', () => map.fit(ownObjects()));
  $('pick-cancel').addEventListener('click', () => cancelPick());
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') cancelPick();
  });
}

function ownObjects() {
  const me = myId();
  if (state.mode !== 'play' || me === null) return [];
  return [...state.objects.values()].filter((o) => o.owner === me && o.pos &&
    o.type_name !== 'Universe' && o.type_name !== 'Galaxy');
}

function updateMapStatus() {
  const el = $('map-status');
  if (!map) return;
  const sel = state.selected !== null ? state.objects.get(state.selected) : null;
  el.textContent = sel ? `${sel.name}: ${fmtCoords(sel.pos)}` : '';
}

// Move lines: an order with an abs_coords parameter, from the object to it.
function updateLines() {
  const lines = [];
  for (const [id, q] of state.queues) {
    const o = state.objects.get(id);
    if (!o || !o.pos || !q) continue;
    let from = o.pos;
    for (const order of q.orders || []) {
      for (const p of order.params || []) {
        if (p.type === 'abs_coords' && p.value) {
          const to = { x: p.value.x, y: p.value.y };
          lines.push({ from, to, color: ownerColor(o.owner), id });
          from = to;
        }
      }
    }
  }
  map.setLines(lines);
}

let pickCallback = null;
function startPick(cb) {
  cancelPick();
  pickCallback = cb;
  $('pick-banner').hidden = false;
  map.startPick((pt, obj) => {
    $('pick-banner').hidden = true;
    pickCallback = null;
    cb(pt, obj);
  });
}

function cancelPick() {
  if (!pickCallback) return;
  const cb = pickCallback;
  pickCallback = null;
  map.stopPick();
  $('pick-banner').hidden = true;
  cb(null, null);
}

// ------------------------------------------------------------ objects

function setObjects(list, replace) {
  if (replace) state.objects.clear();
  for (const o of list) {
    state.objects.set(o.id, o);
    if (typeof o.modtime === 'number' && o.modtime > state.maxModtime) {
      state.maxModtime = o.modtime;
    }
  }
}

function objectsChanged() {
  map.setObjects([...state.objects.values()]);
  updateLines();
  renderObjectList();
  if (state.selected !== null && !state.objects.has(state.selected)) {
    notice('The selected object is gone.', 'info');
    select(null);
  } else if (state.selected !== null) {
    renderSelected(true);
  }
  $('object-count').textContent = String(listable().length);
}

// Every visible object, or what changed since the newest we have.
let refreshing = null;
let refreshAgain = false;
async function refreshObjects(full = false) {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      const since = !full && state.maxModtime >= 0 ? state.maxModtime - 1 : null;
      let res;
      try {
        res = await api('GET', since === null ? 'api/objects' : `api/objects?since=${since}`);
      } catch (err) {
        if (!sessionLost(err)) notice(`Cannot read the objects: ${err.describe()}`, 'error');
        break;
      }
      if (state.mode !== 'play') break;
      setObjects(res.objects || [], since === null);
      for (const id of res.gone || []) {
        state.objects.delete(id);
        state.queues.delete(id);
      }
      await refreshQueues();
      objectsChanged();
      if (!state.fitted) {
        state.fitted = true;
        const own = ownObjects();
        map.fit(own.length ? own : null);
      }
      full = false;
    } while (refreshAgain);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
}

// The order queues of our objects, for the move lines (four at a time).
async function refreshQueues() {
  const own = [...state.objects.values()].filter((o) => o.owner === myId() && o.queue);
  const ids = own.map((o) => o.id);
  for (const id of [...state.queues.keys()]) {
    if (!ids.includes(id)) state.queues.delete(id);
  }
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      try {
        state.queues.set(id, await api('GET', `api/objects/${id}/orders`));
      } catch {
        state.queues.delete(id);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

const TYPE_ORDER = { 'Star System': 0, Planet: 1, Fleet: 2 };

function listable() {
  return [...state.objects.values()].filter((o) => o.type_name !== 'Universe' && o.type_name !== 'Galaxy');
}

function renderObjectList() {
  const ul = clear($('object-list'));
  const text = $('object-filter').value.trim().toLowerCase();
  const mineOnly = $('object-mine').checked && state.mode === 'play';
  const me = myId();
  const list = listable()
    .filter((o) => !text || (o.name || '').toLowerCase().includes(text) ||
      (o.type_name || '').toLowerCase().includes(text) || String(o.id) === text)
    .filter((o) => !mineOnly || o.owner === me)
    .sort((a, b) => {
      const mine = (o) => (state.mode === 'play' && o.owner === me ? 0 : 1);
      return mine(a) - mine(b) || (TYPE_ORDER[a.type_name] ?? 3) - (TYPE_ORDER[b.type_name] ?? 3) ||
        (a.name || '').localeCompare(b.name || '') || a.id - b.id;
    });
  const max = 500;
  for (const o of list.slice(0, max)) {
    const owned = o.owner && o.owner > 0;
    const ownerName = owned ? (o.owner === me && state.mode === 'play' ? 'yours' : names.player(o.owner) || `player ${o.owner}`) : '';
    const li = h('li', { class: `obj${o.id === state.selected ? ' selected' : ''}`, dataset: { id: o.id, type: o.type_name } },
      h('button', { type: 'button', class: 'obj-btn', id: `obj-${o.id}`, onclick: () => select(o.id, { from: 'list' }) },
        h('span', { class: `mark ${(styleOf(o).shape)}` }),
        h('span', { class: 'obj-name' }, o.name || `#${o.id}`),
        h('span', { class: 'obj-type' }, o.type_name + (ownerName ? ` · ${ownerName}` : ''))));
    li.querySelector('.mark').style.color = styleOf(o).color;
    ul.append(li);
  }
  if (list.length > max) {
    ul.append(h('li', { class: 'hint' }, `${list.length - max} more: narrow the filter.`));
  }
  if (!list.length) {
    ul.append(h('li', { class: 'hint' }, state.objects.size ? 'Nothing matches.' : 'No objects.'));
  }
}

// ------------------------------------------------------------ selection

function select(id, { from } = {}) {
  // While picking for an order, a click in the list picks that object.
  if (pickCallback && from === 'list' && id !== null) {
    const obj = state.objects.get(id);
    const cb = pickCallback;
    pickCallback = null;
    map.stopPick();
    $('pick-banner').hidden = true;
    cb(obj.pos ? { ...obj.pos } : null, obj);
    return;
  }
  const changed = state.selected !== id;
  state.selected = id;
  map.select(id);
  for (const li of document.querySelectorAll('#object-list li.obj')) {
    li.classList.toggle('selected', Number(li.dataset.id) === id);
  }
  if (from === 'list' && id !== null) {
    const o = state.objects.get(id);
    if (o && o.pos) {
      const p = map.toScreen(o.pos.x, o.pos.y);
      if (p.x < 0 || p.y < 0 || p.x > map.width || p.y > map.height) map.centerOn(o.pos.x, o.pos.y);
    }
  }
  renderSelected(!changed);
  updateMapStatus();
}

function renderSelected(keep) {
  const o = state.selected !== null ? state.objects.get(state.selected) : null;
  $('object-none').hidden = !!o;
  $('object-detail').hidden = !o;
  if (!o) {
    orders.hide();
    $('orders-box').hidden = true;
    return;
  }
  const detail = $('object-detail');
  detail.dataset.id = String(o.id);
  $('object-name').textContent = o.name || `#${o.id}`;
  const owner = o.owner && o.owner > 0
    ? (o.owner === myId() && state.mode === 'play' ? 'yours' : `owned by ${names.player(o.owner) || `player ${o.owner}`}`)
    : 'nobody’s';
  $('object-meta').textContent = `${o.type_name} #${o.id} · ${owner}` +
    (o.parent !== undefined && state.objects.get(o.parent) ? ` · in ${state.objects.get(o.parent).name}` : '');

  const props = clear($('object-props'));
  if (o.desc) props.append(h('p', { class: 'desc' }, o.desc));
  let group = null;
  let dl = null;
  for (const p of o.params || []) {
    if (p.group !== group || !dl) {
      group = p.group;
      props.append(h('h5', {}, group || 'Properties'));
      dl = h('dl', { class: 'facts' });
      props.append(dl);
    }
    dl.append(h('dt', {}, p.name), h('dd', { dataset: { param: p.name, type: p.type } }, objectParamText(p, names)));
  }
  const contains = (o.contains || []).map((id) => state.objects.get(id)).filter(Boolean);
  if (contains.length) {
    props.append(h('h5', {}, 'Contains'));
    props.append(h('ul', { class: 'contains' }, contains.map((c) =>
      h('li', {}, h('button', { type: 'button', class: 'link', onclick: () => select(c.id, { from: 'list' }) }, c.name)))));
  }

  const canOrder = state.mode === 'play' && o.owner === myId() && o.queue;
  $('orders-box').hidden = !canOrder;
  const none = $('orders-none');
  none.hidden = !!canOrder;
  none.textContent = state.mode === 'watch' ? 'Spectators see no orders.'
    : o.queue ? '' : 'This object takes no orders from you.';
  if (canOrder) {
    orders.show(o, keep);
  } else {
    orders.hide();
  }
}

// ------------------------------------------------------------ session

async function login(e) {
  e.preventDefault();
  const btn = $('login-btn');
  const err = $('login-error');
  err.hidden = true;
  btn.disabled = true;
  btn.textContent = 'Logging in…';
  try {
    const s = await api('POST', 'api/login', { username: $('login-user').value, password: $('login-pass').value });
    $('login-pass').value = '';
    await enterSession(s);
  } catch (ex) {
    err.textContent = ex instanceof ApiError ? ex.describe() : String(ex);
    err.hidden = false;
  } finally {
    btn.disabled = false;
    btn.textContent = 'Log in';
  }
}

// A new account (where the server takes them), then logging in with it.
async function signup() {
  const btn = $('signup-btn');
  const err = $('login-error');
  err.hidden = true;
  const username = $('login-user').value;
  const password = $('login-pass').value;
  if (!username || !password) {
    err.textContent = 'Choose a name and a password first.';
    err.hidden = false;
    return;
  }
  btn.disabled = true;
  try {
    await api('POST', 'api/accounts', { username, password });
    const s = await api('POST', 'api/login', { username, password });
    $('login-pass').value = '';
    await enterSession(s);
  } catch (ex) {
    err.textContent = ex instanceof ApiError ? ex.describe() : String(ex);
    err.hidden = false;
  } finally {
    btn.disabled = false;
  }
}

// Whether the game takes new accounts (GET /api/game).
function showSignup(game) {
  const on = Boolean(game && game.account_creation);
  $('signup-btn').hidden = !on;
  $('signup-hint-on').hidden = !on;
  $('signup-hint-off').hidden = on;
}

async function enterSession(s) {
  state.session = s;
  setCsrf(s.csrf);
  state.mode = 'play';
  state.objects.clear();
  state.queues.clear();
  state.maxModtime = -1;
  state.selected = null;
  state.fitted = false;
  showView();
  connectEvents();
  const user = $('session-user');
  user.textContent = s.player.name;
  user.hidden = false;
  await Promise.all([loadStatic(), refreshPlayers(), loadAccount()]);
  await Promise.all([refreshObjects(true), boards.refresh()]);
}

// The player's own e-mail settings (GET and POST /api/account).
function showAccount(a) {
  $('account-email').value = a.email || '';
  $('account-notify').checked = Boolean(a.notify_email);
  $('account-status').textContent = a.notify_email ? `Turn mails go to ${a.email}.` : 'No turn mails.';
}

async function loadAccount() {
  try {
    showAccount(await api('GET', 'api/account'));
  } catch (err) {
    if (!sessionLost(err)) $('account-status').textContent = '';
  }
}

async function saveAccount(e) {
  e.preventDefault();
  const error = $('account-error');
  error.hidden = true;
  try {
    showAccount(await api('POST', 'api/account', {
      email: $('account-email').value.trim(),
      notify_email: $('account-notify').checked,
    }));
  } catch (err) {
    if (sessionLost(err)) return;
    error.textContent = err instanceof ApiError ? err.describe() : String(err);
    error.hidden = false;
  }
}

// Names of order types, designs and resources (for readable values).
async function loadStatic() {
  const [ot, designs, resources] = await Promise.all([
    api('GET', 'api/ordertypes').catch(() => []),
    api('GET', 'api/designs').catch(() => []),
    api('GET', 'api/resources').catch(() => []),
  ]);
  state.ordertypes = new Map(ot.map((t) => [t.id, t]));
  state.designs = new Map(designs.map((d) => [d.id, d]));
  state.resources = new Map(resources.map((r) => [r.id, r]));
}

async function logout() {
  try {
    await api('POST', 'api/logout');
  } catch {
    // logged out either way
  }
  leaveSession();
}

function leaveSession(message) {
  state.session = null;
  setCsrf(null);
  leaveGameView();
  connectEvents();
  if (message) notice(message, 'error', 0);
}

function leaveGameView() {
  state.mode = 'front';
  state.objects.clear();
  state.queues.clear();
  state.selected = null;
  state.history = null;
  orders.hide();
  boards.reset();
  map.setObjects([]);
  map.setLines([]);
  showView();
  refreshGame();
  refreshPlayers();
}

function showView() {
  const playing = state.mode === 'play';
  const watching = state.mode === 'watch';
  document.body.dataset.mode = state.mode;
  $('front').hidden = playing || watching;
  $('play').hidden = !(playing || watching);
  $('player-tools').hidden = !playing;
  $('watch-tools').hidden = !watching;
  $('boards-panel').hidden = !playing;
  $('object-mine').parentElement.hidden = !playing;
  $('logout-btn').hidden = !playing;
  $('leave-watch').hidden = !watching;
  $('session-user').hidden = !playing;
  $('object-detail').hidden = true;
  $('object-none').hidden = false;
  renderLegend();
  renderPlayers();
  if (playing || watching) {
    map.resize();
  }
}

// ------------------------------------------------------------ spectators

async function startWatching() {
  let hist;
  let uni;
  try {
    hist = await api('GET', 'api/history');
    uni = await api('GET', 'api/universe');
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      $('spectate-on').hidden = true;
      $('spectate-off').hidden = false;
      notice('Spectating is off on this server.', 'error');
    } else {
      notice(`Cannot watch: ${err.describe()}`, 'error');
    }
    return;
  }
  state.mode = 'watch';
  state.history = hist;
  state.objects.clear();
  state.selected = null;
  showView();
  setWatchRange(hist, uni.turn);
  showUniverse(uni);
  map.fit(null);
}

function setWatchRange(hist, turn) {
  const s = $('turn-slider');
  s.min = String(hist.first);
  s.max = String(hist.last);
  s.value = String(turn);
  s.disabled = hist.first === hist.last;
  state.watchTurn = turn;
  watchLabel();
}

function watchLabel() {
  const s = $('turn-slider');
  const t = Number(s.value);
  const live = state.history && t === state.history.last;
  $('turn-label').textContent = `turn ${t}${live ? ' (now)' : ''} of ${state.history ? state.history.first : t}–${state.history ? state.history.last : t}`;
}

function showUniverse(uni) {
  state.watchTurn = uni.turn;
  setObjects(uni.objects || [], true);
  state.queues.clear();
  objectsChanged();
  $('map-wrap').dataset.turn = String(uni.turn);
}

let watchSeq = 0;
async function loadWatchTurn(turn) {
  const seq = ++watchSeq;
  try {
    const live = state.history && turn === state.history.last;
    const uni = await api('GET', live ? 'api/universe' : `api/universe?turn=${turn}`);
    if (seq === watchSeq && state.mode === 'watch') showUniverse(uni);
  } catch (err) {
    if (seq === watchSeq) notice(`Turn ${turn}: ${err.describe()}`, 'error');
  }
}

async function refreshWatch() {
  let hist;
  try {
    hist = await api('GET', 'api/history');
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      leaveGameView();
      notice('Spectating has been turned off.', 'error', 0);
    }
    return;
  }
  const wasLive = !state.history || state.watchTurn === state.history.last;
  state.history = hist;
  const s = $('turn-slider');
  s.min = String(hist.first);
  s.max = String(hist.last);
  s.disabled = hist.first === hist.last;
  if (wasLive) {
    s.value = String(hist.last);
    await loadWatchTurn(hist.last);
  }
  watchLabel();
}

// ------------------------------------------------------------ events

let events = null;
let eventsRetry = null;

function connectEvents() {
  if (events) events.close();
  clearTimeout(eventsRetry);
  const q = state.lastEventId ? `?last_event_id=${encodeURIComponent(state.lastEventId)}` : '';
  events = new EventSource(`api/events${q}`);
  const es = events;
  const live = $('live-status');
  const on = (name, fn) => es.addEventListener(name, (e) => {
    if (e.lastEventId) state.lastEventId = e.lastEventId;
    let data = {};
    try {
      data = e.data ? JSON.parse(e.data) : {};
    } catch {
      return;
    }
    fn(data);
  });
  es.onopen = () => {
    live.classList.remove('off');
    live.title = 'Live updates: on';
  };
  es.onerror = () => {
    live.classList.add('off');
    live.title = 'Live updates: reconnecting';
    if (es.readyState === EventSource.CLOSED && es === events) {
      eventsRetry = setTimeout(connectEvents, 5000);
    }
  };
  on('hello', (d) => {
    if (state.game && d.turn !== state.game.turn) {
      onTurnStart(d);       // a turn went by while we were away
    } else {
      setCountdown(d.seconds_left);
    }
  });
  on('turn_start', onTurnStart);
  on('turn_end', () => {
    state.turnEnding = true;
    tick();
  });
  on('turn_warning', (d) => {
    setCountdown(d.seconds_left);
    notice(`${fmtDuration(d.seconds_left)} left in this turn.`, 'info', 5);
  });
  on('player_finished', () => refreshPlayers());
  on('player_idle', () => refreshPlayers());
  on('player_removed', () => refreshPlayers());
  on('player_eliminated', () => refreshPlayers());
  on('game_over', () => {
    state.turnEnding = false;
    refreshGame();
    refreshPlayers();
  });
  on('message', (d) => {
    if (state.mode === 'play') boards.onMessage(d);
  });
}

async function onTurnStart(d) {
  state.turnEnding = false;
  if (state.game) {
    state.game.turn = d.turn;
    state.game.turn_name = '';
  }
  setCountdown(d.seconds_left);
  const work = [refreshGame(), refreshPlayers()];
  if (state.mode === 'play') {
    // The whole view at a new turn: "changed since" misses objects that
    // only came into or went out of sight (fog of war).
    work.push(refreshObjects(true), boards.refresh());
  } else if (state.mode === 'watch') {
    work.push(refreshWatch());
  }
  await Promise.all(work);
  document.body.dataset.turn = String(d.turn);
}

// ------------------------------------------------------------ start

function wire() {
  $('login-form').addEventListener('submit', login);
  $('signup-btn').addEventListener('click', signup);
  $('logout-btn').addEventListener('click', logout);
  $('account-form').addEventListener('submit', saveAccount);
  $('end-turn').addEventListener('click', endTurn);
  $('watch-btn').addEventListener('click', startWatching);
  $('leave-watch').addEventListener('click', () => leaveGameView());
  $('object-filter').addEventListener('input', renderObjectList);
  $('object-mine').addEventListener('change', renderObjectList);
  $('object-center').addEventListener('click', () => {
    const o = state.objects.get(state.selected);
    if (o && o.pos) map.centerOn(o.pos.x, o.pos.y);
  });
  let sliderTimer = null;
  $('turn-slider').addEventListener('input', () => {
    watchLabel();
    clearTimeout(sliderTimer);
    sliderTimer = setTimeout(() => loadWatchTurn(Number($('turn-slider').value)), 200);
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refreshGame();
  });
}

function exposeDebug() {
  // For tests and the curious: what the page holds and draws.
  window.tpDebug = {
    mode: () => state.mode,
    player: () => myId(),
    turn: () => (state.game ? state.game.turn : null),
    selected: () => state.selected,
    object: (id) => {
      const o = state.objects.get(id);
      return o ? JSON.parse(JSON.stringify(o)) : null;
    },
    objectIds: () => [...state.objects.keys()],
    drawnObjects: () => {
      map.drawNow();
      return [...map.drawn];
    },
    screenPos: (id) => {
      const o = state.objects.get(id);
      return o && o.pos ? map.toScreen(o.pos.x, o.pos.y) : null;
    },
    lines: () => map.lines.map((l) => ({ id: l.id, from: l.from, to: l.to })),
    view: () => ({ ...map.view, width: map.width, height: map.height }),
    secondsLeft: () => secondsLeft(),
    watchTurn: () => state.watchTurn,
  };
}

async function start() {
  setupMap();
  orders = new OrderPanel({
    names,
    objects: () => [...state.objects.values()],
    players: () => state.players,
    ordertypes: () => state.ordertypes,
    startPick,
    cancelPick,
    onQueue: (id, q) => {
      state.queues.set(id, q);
      updateLines();
    },
    onSessionLost: sessionLost,
  });
  boards = new Boards({
    names,
    storagePrefix: () => `tp:${state.game ? state.game.short_name : 'tp'}:${myId()}`,
    onUnread: (n) => {
      state.unread = n;
      updateTitle();
      $('unread-total').textContent = n > 0 ? String(n) : '';
      $('unread-total').classList.toggle('unread', n > 0);
    },
    onSessionLost: sessionLost,
  });
  wire();
  exposeDebug();
  setInterval(tick, 250);
  showView();
  await Promise.all([refreshGame(), refreshPlayers()]);
  let s = null;
  try {
    s = await api('GET', 'api/session');
  } catch {
    s = null;
  }
  if (s && s.player) {
    await enterSession(s);
  } else {
    connectEvents();
  }
  document.body.dataset.ready = 'true';
}

start();
