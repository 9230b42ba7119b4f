// The control UI (docs/admin-ui.md): the game, its connections, the load
// of the last hour, the log, the players and the controls to run the
// game, live from GET /api/admin/events. Every control is a call of the
// admin API (POST /api/admin/action), the console pane a session of the
// server's Lua console (POST /api/admin/console).

import { ApiError, request } from '/api.js';
import { h, clear, fmtDuration, fmtInt, plural } from '/format.js';

const $ = (id) => document.getElementById(id);

const S = {
  view: 'loading',
  name: null,
  csrf: null,
  status: null,
  clients: [],
  players: [],
  actions: new Map(),      // name -> {name, usage, args, confirm, ...}
  samples: [],
  turns: [],
  interval: 10,
  jobs: new Map(),         // id -> job
  audit: new Map(),        // id -> entry
  logMax: 0,               // the last log line's id shown
  es: null,
  pending: null,           // events that came before the state
  helloSeen: false,
  deadline: null,          // performance.now() seconds at the turn's end
  paused: false,
  turnEnding: false,
  clockOffset: 0,          // server clock - browser clock (s)
  history: [],
  histPos: 0,
  confirm: null,           // the open confirmation's resolve
};

const LEVEL_RANK = { fatal: 0, error: 1, warning: 2, info: 3, debug: 4, trace: 5 };

const MODE_TEXT = {
  fixed: 'fixed length',
  players_finished: 'ends when all have finished',
  threshold: 'ends past a threshold',
  manual: 'ended by the admin',
};

// ------------------------------------------------------------ requests

// A request of the control UI: api.js's with the admin's CSRF header,
// never cached. A 401 (but from login and the session check) means the
// session has ended.
async function call(method, path, body) {
  try {
    return await request(method, path, body,
      { csrfHeader: 'X-TP-Admin-CSRF', csrfToken: S.csrf, cache: 'no-store' });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 &&
        path !== '/api/admin/login' && path !== '/api/admin/session') {
      sessionLost('Your admin session has ended: log in again.');
    }
    throw err;
  }
}

// ------------------------------------------------------------ formatting

function pad2(n) {
  return String(n).padStart(2, '0');
}

// A Unix time as the local clock: "14:03:27", with the day if not today.
function fmtClock(t, withDay = true) {
  if (typeof t !== 'number') return '';
  const d = new Date(t * 1000);
  const clock = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  const today = new Date();
  if (withDay && d.toDateString() !== today.toDateString()) {
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${clock}`;
  }
  return clock;
}

// Seconds as "3 s", "2 min", "1 h 5 min", "2 d 3 h".
function fmtAge(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '–';
  s = Math.max(0, s);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) {
    const m = Math.floor((s % 3600) / 60);
    return `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ''}`;
  }
  const hh = Math.floor((s % 86400) / 3600);
  return `${Math.floor(s / 86400)} d${hh ? ` ${hh} h` : ''}`;
}

function fmtBytes(n) {
  if (typeof n !== 'number') return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// An action as the console would write it: kick("bob"), passwords hidden.
function callText(name, args) {
  const a = S.actions.get(name);
  const kinds = a ? a.args || [] : [];
  const shown = args.map((v, i) => ((kinds[i] || '').startsWith('p') ? '"***"' : JSON.stringify(v)));
  return `${name}(${shown.join(', ')})`;
}

// ------------------------------------------------------------ the result line

let resultTimer = null;
let resultSeq = 0;

// ok: true (done), false (refused or failed), null (nothing done).
function showResult(text, ok) {
  const box = $('action-result');
  clearTimeout(resultTimer);
  $('action-result-text').textContent = text;
  box.className = `notice ${ok === false ? 'error' : ok ? 'ok' : 'info'}`;
  box.dataset.ok = ok === null ? '' : String(ok);
  box.dataset.seq = String(++resultSeq);
  box.hidden = false;
  resultTimer = setTimeout(() => { box.hidden = true; }, ok === false ? 30000 : 12000);
}

// ------------------------------------------------------------ views

function showView(view) {
  S.view = view;
  document.body.dataset.view = view;
  $('login-view').hidden = view !== 'login';
  $('dash').hidden = view !== 'dash';
  $('account').hidden = view !== 'dash';
  $('turn-box').hidden = view !== 'dash';
  if (view === 'dash') {
    requestAnimationFrame(drawCharts);
  }
}

function closeEvents() {
  if (S.es) {
    S.es.close();
    S.es = null;
  }
  setLive(false, 'off');
}

function sessionLost(why) {
  if (S.view === 'login') return;
  closeEvents();
  S.csrf = null;
  closeConfirm(null);
  showLogin(why);
}

function showLogin(note) {
  showView('login');
  const n = $('login-note');
  n.textContent = note || '';
  n.hidden = !note;
  $('login-password').value = '';
  ($('login-name').value ? $('login-password') : $('login-name')).focus();
}

async function login(e) {
  e.preventDefault();
  const btn = $('login-btn');
  const err = $('login-error');
  err.hidden = true;
  btn.disabled = true;
  try {
    const r = await call('POST', '/api/admin/login', {
      name: $('login-name').value.trim(),
      password: $('login-password').value,
    });
    S.csrf = r.csrf;
    S.name = r.name;
    $('login-password').value = '';
    $('login-note').hidden = true;
    await enterDash();
  } catch (x) {
    err.textContent = x instanceof ApiError && x.status === 401
      ? `Wrong name or password (${x.status}).`
      : `Cannot log in: ${x instanceof ApiError ? x.describe() : x.message}`;
    err.hidden = false;
    $('login-password').select();
  } finally {
    btn.disabled = false;
  }
}

async function logout() {
  // The stream first: the server ends it with the session.
  closeEvents();
  try {
    await call('POST', '/api/admin/logout', {});
  } catch {
    // Gone anyway.
  }
  closeEvents();
  S.csrf = null;
  showLogin('Logged out.');
}

async function enterDash() {
  showView('dash');
  $('admin-name').textContent = S.name || '';
  S.pending = [];
  S.helloSeen = false;
  connectEvents();
  await loadState();
}

async function loadState() {
  let st;
  try {
    st = await call('GET', '/api/admin/state');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showResult(`Cannot read the server's state: ${err.message}`, false);
    }
    S.pending = null;
    return;
  }
  applyState(st);
  const queued = S.pending || [];
  S.pending = null;
  for (const [name, data] of queued) {
    handleEvent(name, data);
  }
}

// ------------------------------------------------------------ the state

function applyState(st) {
  S.name = st.admin || S.name;
  $('admin-name').textContent = S.name || '';
  S.actions = new Map((st.actions || []).map((a) => [a.name, a]));
  for (const btn of document.querySelectorAll('[data-action]')) {
    const a = S.actions.get(btn.dataset.action);
    btn.disabled = !a;
    if (a && a.summary && !btn.title) btn.title = a.summary;
  }
  S.clients = st.clients || [];
  S.players = st.players || [];
  const hist = st.history || {};
  S.interval = hist.interval || 10;
  S.samples = hist.samples || [];
  S.turns = hist.turns || [];
  const last = S.samples[S.samples.length - 1];
  const now = Date.now() / 1000;
  S.clockOffset = last && last.t > now ? last.t - now : 0;

  clear($('log'));
  S.logMax = 0;
  addLog(st.log || []);

  S.audit = new Map();
  clear($('audit'));
  for (const e of st.audit || []) addAudit(e);
  renderAuditEmpty();

  S.jobs = new Map();
  for (const j of st.jobs || []) S.jobs.set(j.id, j);
  renderJobs();

  setStatus(st.status || {});
  renderClients();
  renderPlayers();
  drawCharts();
  document.body.dataset.loaded = String(Date.now());
}

// ------------------------------------------------------------ events

const EVENTS = ['hello', 'status', 'clients', 'players', 'sample', 'turn', 'log',
  'audit', 'job', 'turn_end', 'turn_start', 'turn_warning', 'player_finished'];

function setLive(on, why) {
  const live = $('live-status');
  live.classList.toggle('off', !on);
  live.title = `Live updates: ${why}`;
  live.dataset.state = on ? 'on' : why;
}

function connectEvents() {
  closeEvents();
  const es = new EventSource('/api/admin/events');
  S.es = es;
  setLive(false, 'connecting');
  for (const name of EVENTS) {
    es.addEventListener(name, (e) => {
      if (es !== S.es) return;
      let data;
      try {
        data = e.data ? JSON.parse(e.data) : {};
      } catch {
        return;
      }
      if (S.pending) {
        S.pending.push([name, data]);
      } else {
        handleEvent(name, data);
      }
    });
  }
  es.onopen = () => setLive(true, 'on');
  es.onerror = () => {
    if (es !== S.es) return;
    setLive(false, 'reconnecting');
    // EventSource retries by itself after a network error; an answer
    // other than the stream (401 when the session has gone) ends it.
    if (es.readyState === EventSource.CLOSED) {
      S.es = null;
      checkSession();
    }
  };
}

async function checkSession() {
  if (S.view !== 'dash') return;
  try {
    const s = await call('GET', '/api/admin/session');
    S.csrf = s.csrf || S.csrf;
    setTimeout(() => {
      if (S.view === 'dash' && !S.es) enterDash();
    }, 3000);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionLost('Your admin session has ended: log in again.');
    } else {
      setLive(false, 'the server cannot be reached');
      setTimeout(checkSession, 5000);
    }
  }
}

function handleEvent(name, d) {
  switch (name) {
    case 'hello':
      // After a reconnection: what happened meanwhile.
      if (S.helloSeen && !S.pending) {
        S.pending = [];
        loadState();
      }
      S.helloSeen = true;
      break;
    case 'status':
      setStatus(d);
      break;
    case 'clients':
      S.clients = Array.isArray(d) ? d : [];
      renderClients();
      break;
    case 'players':
      S.players = Array.isArray(d) ? d : [];
      renderPlayers();
      break;
    case 'sample':
      S.clockOffset = Math.abs(d.t - Date.now() / 1000) > 2 ? d.t - Date.now() / 1000 : 0;
      S.samples.push(d);
      trimHistory();
      drawCharts();
      break;
    case 'turn':
      S.turns.push(d);
      trimHistory();
      drawCharts();
      break;
    case 'log':
      addLog(Array.isArray(d) ? d : [d]);
      break;
    case 'audit':
      addAudit(d, true);
      renderAuditEmpty();
      break;
    case 'job':
      onJob(d);
      break;
    case 'turn_end':
      S.turnEnding = true;
      tick();
      break;
    case 'turn_start':
      S.turnEnding = false;
      if (S.status) S.status.turn = d.turn;
      setTurn(d.turn);
      setCountdown(d.seconds_left, S.status ? S.status.paused : false);
      break;
    case 'turn_warning':
      setCountdown(d.seconds_left, S.status ? S.status.paused : false);
      break;
    default:
      break;
  }
}

function trimHistory() {
  const from = serverNow() - 3600 - S.interval;
  while (S.samples.length && S.samples[0].t < from) S.samples.shift();
  while (S.turns.length && S.turns[0].t < from) S.turns.shift();
}

function serverNow() {
  return Date.now() / 1000 + S.clockOffset;
}

// ------------------------------------------------------------ header, game

function setTurn(turn) {
  const el = $('turn-number');
  el.textContent = turn === undefined || turn === null ? '–' : String(turn);
  el.dataset.turn = el.textContent;
}

function setCountdown(left, paused) {
  S.deadline = typeof left === 'number' && left >= 0 ? performance.now() / 1000 + left : null;
  S.paused = !!paused;
  tick();
}

function tick() {
  const el = $('countdown');
  const left = S.deadline === null ? null : Math.max(0, S.deadline - performance.now() / 1000);
  const st = S.status || {};
  let text;
  if (S.paused) {
    text = 'paused';
  } else if (S.turnEnding) {
    text = 'turn ending…';
  } else if (left === null) {
    text = st.turn_mode === 'manual' ? 'manual' : 'no clock';
  } else if (left <= 0) {
    text = 'turn ending…';
  } else {
    text = fmtDuration(Math.ceil(left));
  }
  if (el.textContent !== text) el.textContent = text;
  el.hidden = S.paused;     // the paused badge says it
  el.dataset.seconds = left === null ? '' : String(Math.ceil(left));
  el.classList.toggle('soon', left !== null && left < 60 && !S.paused);
}

function setStatus(st) {
  if (S.status && S.status.turn !== st.turn) S.turnEnding = false;
  S.status = st;
  setTurn(st.turn);
  setCountdown(st.time_left, st.paused);
  $('paused-badge').hidden = !st.paused;
  $('game-ruleset').textContent = st.ruleset || '';
  $('server-version').textContent = st.server ? `· ${st.server}` : '';
  const length = st.turn_length > 0 ? fmtDuration(st.turn_length) : 'no limit';
  const info = $('turn-info');
  info.textContent = `${MODE_TEXT[st.turn_mode] || st.turn_mode || ''} · ${length}`;
  info.dataset.mode = st.turn_mode || '';
  info.dataset.length = String(st.turn_length ?? '');

  const waiting = st.waiting_for || [];
  const w = $('waiting-for');
  w.textContent = st.game_over ? 'The game is over.'
    : waiting.length ? `Waiting for ${waiting.join(', ')}.`
      : st.players ? 'Every player has finished this turn.' : 'No players yet.';
  w.dataset.waiting = waiting.join(',');

  const facts = [
    ['Players', `${fmtInt(st.players ?? 0)} (${fmtInt(st.logged_in ?? 0)} logged in)`],
    ['Connections', fmtInt(st.connections ?? 0)],
    ['Objects', fmtInt(st.objects ?? 0)],
    ['Turns', `${MODE_TEXT[st.turn_mode] || st.turn_mode || '–'}, ${length}`],
  ];
  if (st.admin_protocol) facts.push(['Admin protocol', `port ${st.admin_protocol}`]);
  if (st.data) facts.push(['Data', st.data]);
  const dl = clear($('game-facts'));
  for (const [k, v] of facts) dl.append(h('dt', {}, k), h('dd', {}, v));

  $('btn-pause').disabled = !S.actions.has('turn.pause') || !!st.paused;
  $('btn-resume').disabled = !S.actions.has('turn.resume') || !st.paused;
  const mode = $('turn-mode');
  if (!mode.dataset.dirty && st.turn_mode) mode.value = st.turn_mode;
  const len = $('turn-length');
  if (!len.dataset.dirty && document.activeElement !== len && typeof st.turn_length === 'number') {
    len.value = String(st.turn_length);
  }
}

// ------------------------------------------------------------ tables

// Updates tbody to hold one row per item, in order, keeping the rows (and
// their buttons) of the items already shown. render(item) gives
// { cells: [{text, cls, title}], data: {...}, cls, actions: {sig, build} }.
function syncRows(tbody, items, keyOf, render, labels) {
  const old = new Map([...tbody.children].map((r) => [r.dataset.key, r]));
  const rows = [];
  for (const it of items) {
    const key = String(keyOf(it));
    const spec = render(it);
    let tr = old.get(key);
    old.delete(key);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.key = key;
    }
    for (const [k, v] of Object.entries(spec.data || {})) {
      const s = v === null || v === undefined ? '' : String(v);
      if (tr.dataset[k] !== s) tr.dataset[k] = s;
    }
    tr.className = spec.cls || '';
    const n = spec.cells.length + 1;
    while (tr.children.length < n) tr.append(document.createElement('td'));
    while (tr.children.length > n) tr.lastChild.remove();
    spec.cells.forEach((c, i) => {
      const td = tr.children[i];
      const text = c.text === null || c.text === undefined ? '' : String(c.text);
      if (td.textContent !== text) td.textContent = text;
      const cls = c.cls || '';
      if (td.className !== cls) td.className = cls;
      if (c.title) td.title = c.title;
      if (labels && labels[i]) td.dataset.label = labels[i];
    });
    const acts = tr.children[n - 1];
    acts.className = 'acts';
    const sig = spec.actions ? spec.actions.sig : '';
    if (acts.dataset.sig !== sig) {
      acts.dataset.sig = sig;
      acts.replaceChildren(...(spec.actions ? spec.actions.build() : []));
    }
    rows.push(tr);
  }
  for (const r of old.values()) r.remove();
  rows.forEach((r, i) => {
    if (tbody.children[i] !== r) tbody.insertBefore(r, tbody.children[i] || null);
  });
}

function playerByName(name) {
  return S.players.find((p) => p.name === name) || null;
}

function renderClients() {
  const list = S.clients;
  const labels = ['Id', 'Kind', 'Listener', 'Peer', 'Player', 'Protocol', 'TLS', 'State', 'Idle', 'Pending'];
  syncRows($('clients'), list, (c) => c.id, (c) => {
    const isPlayer = c.kind !== 'admin' && typeof c.player_id === 'number' && c.player_id > 0 && c.player;
    return {
      data: { id: c.id, player: c.player || '', kind: c.kind || '' },
      cls: c.player && c.player.startsWith('admin ') ? 'admin-row' : '',
      cells: [
        { text: c.id, cls: 'num' },
        { text: c.kind },
        { text: c.listener, cls: 'mono' },
        { text: c.peer, cls: 'mono' },
        { text: c.player || '–', cls: c.player ? 'pname' : 'muted' },
        { text: c.protocol },
        { text: c.tls ? 'yes' : 'no', cls: c.tls ? 'yes' : 'muted' },
        { text: c.state },
        { text: fmtAge(c.idle), cls: 'num', title: c.age !== undefined ? `connected for ${fmtAge(c.age)}` : '' },
        { text: fmtBytes(c.pending), cls: c.pending > 0 ? 'num warn' : 'num' },
      ],
      actions: isPlayer ? {
        sig: `kick:${c.player}`,
        build: () => [h('button', {
          type: 'button', class: 'small danger-ghost', 'data-do': 'kick', title: `Close ${c.player}'s connections`,
          onclick: () => runAction('kick', [c.player]),
        }, 'kick')],
      } : null,
    };
  }, labels);
  $('clients-count').textContent = list.length ? String(list.length) : '';
  $('clients-empty').hidden = list.length > 0;
}

function renderPlayers() {
  const list = S.players;
  const labels = ['Id', 'Name', 'Online', 'This turn', 'Email'];
  syncRows($('players'), list, (p) => p.id, (p) => ({
    data: { id: p.id, player: p.name, banned: p.banned ? 'true' : 'false', online: p.online },
    cls: [p.banned ? 'banned' : '', p.alive === false ? 'out' : ''].join(' ').trim(),
    cells: [
      { text: p.id, cls: 'num' },
      { text: p.ai ? `${p.name} (AI, ${p.ai})` : p.name, cls: 'pname' },
      { text: p.online ? fmtInt(p.online) : '–', cls: p.online ? 'num yes' : 'num muted' },
      { text: p.finished ? 'finished' : p.idle ? 'idle' : 'playing', cls: p.finished ? 'yes' : p.idle ? 'muted' : '' },
      { text: p.email || '', cls: 'muted email', title: p.email || '' },
    ],
    actions: {
      sig: `${p.name}:${p.banned}`,
      build: () => [
        h('button', { type: 'button', class: 'small', 'data-do': 'kick', onclick: () => runAction('kick', [p.name]) }, 'kick'),
        p.banned
          ? h('button', { type: 'button', class: 'small', 'data-do': 'unban', onclick: () => runAction('unban', [p.name]) }, 'unban')
          : h('button', { type: 'button', class: 'small', 'data-do': 'ban', onclick: () => runAction('ban', [p.name]) }, 'ban'),
        h('button', { type: 'button', class: 'small', 'data-do': 'reset_password', onclick: () => runAction('reset_password', [p.name]) }, 'password'),
        h('button', { type: 'button', class: 'small danger-ghost', 'data-do': 'remove_player', onclick: () => runAction('remove_player', [p.name]) }, 'remove'),
      ],
    },
  }), labels);
  $('players-count').textContent = list.length ? String(list.length) : '';
  $('players-empty').hidden = list.length > 0;
}

// ------------------------------------------------------------ actions

function connectionsOf(name) {
  const p = playerByName(name);
  if (p && typeof p.online === 'number') return p.online;
  return S.clients.filter((c) => c.player === name && c.kind !== 'admin').length;
}

// What the confirmation says: exactly what will happen.
function confirmSpec(action, args) {
  const a = S.actions.get(action) || {};
  const st = S.status || {};
  const who = args[0];
  const n = typeof who === 'string' ? connectionsOf(who) : 0;
  const conns = n ? `close their ${plural(n, 'connection')}` : 'they have no open connection';
  switch (action) {
    case 'kick':
      return { title: `Kick ${who}?`, ok: 'Kick', text: `Kick ${who}: ${conns}. They may log in again.` };
    case 'ban':
      return { title: `Ban ${who}?`, ok: 'Ban', text: `Ban ${who}: ${conns}, and refuse their logins until they are unbanned.` };
    case 'remove_player':
      return {
        title: `Remove ${who}?`, ok: 'Remove',
        text: `Remove ${who}: delete their account, so that they cannot log in again; ${conns}. What they own in the game stays.`,
      };
    case 'reset_password':
      return {
        title: `New password for ${who}`, ok: 'Set the password', input: 'New password',
        text: `Give ${who} a new password: the old one stops working at once (their open connections stay).`,
      };
    case 'turn.now': {
      const t = typeof st.turn === 'number' ? st.turn : null;
      return {
        title: 'End the turn now?', ok: 'End turn',
        text: t === null ? a.confirm
          : `End turn ${t} now: the ruleset processes it at once and every player gets turn ${t + 1}.`,
      };
    }
    case 'reload':
      return { title: 'Reload the configuration?', ok: 'Reload', text: a.confirm };
    case 'reload_ruleset':
      return { title: 'Reload the ruleset?', ok: 'Reload', text: a.confirm };
    case 'shutdown':
      return {
        title: 'Stop the server?', ok: 'Stop the server',
        text: `${a.confirm} This page loses its connection too.`,
      };
    default:
      return { title: `${action}?`, ok: 'Confirm', text: a.confirm };
  }
}

function confirmAction(spec) {
  const dlg = $('confirm-dialog');
  closeConfirm(null);
  $('confirm-title').textContent = spec.title;
  $('confirm-text').textContent = spec.text;
  $('confirm-ok').textContent = spec.ok || 'Confirm';
  $('confirm-error').hidden = true;
  const input = $('confirm-input');
  input.value = '';
  $('confirm-input-row').hidden = !spec.input;
  $('confirm-input-label').textContent = spec.input || '';
  dlg.dataset.needsInput = spec.input ? 'true' : '';
  return new Promise((resolve) => {
    S.confirm = resolve;
    dlg.showModal();
    (spec.input ? input : $('confirm-cancel')).focus();
  });
}

function closeConfirm(value) {
  const dlg = $('confirm-dialog');
  const resolve = S.confirm;
  S.confirm = null;
  if (dlg.open) dlg.close();
  if (resolve) resolve(value);
}

function wireConfirm() {
  const dlg = $('confirm-dialog');
  $('confirm-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const needs = dlg.dataset.needsInput === 'true';
    const v = $('confirm-input').value;
    if (needs && !v) {
      const err = $('confirm-error');
      err.textContent = 'Type the new password first.';
      err.hidden = false;
      $('confirm-input').focus();
      return;
    }
    closeConfirm({ input: needs ? v : undefined });
  });
  $('confirm-cancel').addEventListener('click', () => closeConfirm(null));
  dlg.addEventListener('cancel', (e) => {
    e.preventDefault();
    closeConfirm(null);
  });
}

// Runs an action of the admin API; the answer goes to the result line.
async function runAction(action, args = [], btn = null) {
  const a = S.actions.get(action);
  if (!a) {
    showResult(`The server has no action ${action}.`, false);
    return null;
  }
  if (a.confirm) {
    const spec = confirmSpec(action, args);
    const c = await confirmAction(spec);
    if (!c) {
      showResult(`${callText(action, args)}: cancelled, nothing done.`, null);
      return null;
    }
    if (c.input !== undefined) args = [...args, c.input];
  }
  const shown = callText(action, args);
  if (btn) btn.disabled = true;
  try {
    const r = await call('POST', '/api/admin/action', { action, args });
    if (r && r.job) {
      onJob(r.job);
      const j = S.jobs.get(r.job.id) || r.job;
      if (j.state === 'running') {
        showResult(`${shown}: started (job ${j.id})…`, true);
      } else {
        showResult(jobText(j), j.state === 'done');   // over already
      }
    } else {
      const res = r && r.result !== undefined && r.result !== '' ? r.result : 'done';
      showResult(`${shown} → ${res}`, true);
    }
    return r;
  } catch (err) {
    if (action === 'shutdown' && err instanceof ApiError && err.status === 0) {
      showResult(`${shown}: the server is stopping.`, true);   // gone first
      return null;
    }
    const text = err instanceof ApiError ? err.message : String(err);
    showResult(`${shown} failed: ${text}`, false);
    return null;
  } finally {
    if (btn) {
      btn.disabled = false;
      if (S.status) setStatus(S.status);   // pause/resume states
    }
  }
}

// ------------------------------------------------------------ jobs

function onJob(j) {
  const before = S.jobs.get(j.id);
  // The answer that started a job may come after the event of its end.
  if (before && before.state !== 'running' && j.state === 'running') return;
  S.jobs.set(j.id, j);
  while (S.jobs.size > 20) S.jobs.delete(S.jobs.keys().next().value);
  renderJobs();
  if (before && before.state === 'running' && j.state !== 'running') {
    showResult(jobText(j), j.state === 'done');
  }
}

function jobText(j) {
  return `${j.detail} (job ${j.id}): ${j.state}${j.result ? ` – ${j.result}` : ''}`;
}

function renderJobs() {
  const ul = clear($('jobs'));
  const list = [...S.jobs.values()].sort((a, b) => b.id - a.id);
  for (const j of list) {
    const state = j.state === 'running' ? 'running…' : j.state;
    ul.append(h('li', { class: `job ${j.state}`, dataset: { id: j.id, state: j.state } },
      h('span', { class: `pill ${j.state === 'done' ? 'ok' : j.state === 'failed' ? 'bad' : 'warn'}` }, state),
      ' ', h('code', {}, j.detail || j.action),
      ' ', h('span', { class: 'muted' }, fmtClock(j.finished || j.started)),
      j.result ? h('div', { class: 'job-result' }, j.result) : null));
  }
}

// ------------------------------------------------------------ log

function addLog(lines) {
  const box = $('log');
  const frag = document.createDocumentFragment();
  for (const l of lines) {
    if (typeof l.id === 'number') {
      if (l.id <= S.logMax) continue;
      S.logMax = l.id;
    }
    const level = String(l.level || 'info');
    frag.append(h('div', { class: `line lv-${level}`, dataset: { id: l.id, level } },
      h('span', { class: 't' }, fmtClock(l.time, false)), ' ',
      h('span', { class: 'lv' }, level), ' ',
      h('span', { class: 'mod' }, l.module || ''), ' ',
      h('span', { class: 'txt' }, l.text || '')));
  }
  if (!frag.childNodes.length) return;
  box.append(frag);
  while (box.childElementCount > 1000) box.firstElementChild.remove();
  if ($('log-follow').checked) box.scrollTop = box.scrollHeight;
}

function setLogLevel() {
  const box = $('log');
  box.dataset.min = $('log-level').value;
  if ($('log-follow').checked) box.scrollTop = box.scrollHeight;
}

// ------------------------------------------------------------ audit

function addAudit(e, live = false) {
  if (!e || e.id === undefined || S.audit.has(e.id)) return;
  S.audit.set(e.id, e);
  const li = h('li', { class: `entry ${e.ok ? 'ok' : 'failed'}`, dataset: { id: e.id, action: e.action || '', ok: String(!!e.ok) } },
    h('div', { class: 'audit-head' },
      h('span', { class: 't' }, fmtClock(e.time)),
      h('span', { class: 'who' }, e.admin || ''),
      h('span', { class: 'peer mono' }, e.peer || ''),
      h('span', { class: `pill ${e.ok ? 'ok' : 'bad'}` }, e.ok ? 'ok' : 'failed')),
    h('code', { class: 'detail' }, e.detail || e.action || ''),
    e.result ? h('div', { class: 'result' }, e.result) : null);
  if (live) li.classList.add('new');
  const list = $('audit');
  list.prepend(li);   // newest first (the state's list is oldest first)
  while (list.childElementCount > 200) {
    const last = list.lastElementChild;
    S.audit.delete(Number(last.dataset.id));
    last.remove();
  }
}

function renderAuditEmpty() {
  $('audit-empty').hidden = $('audit').childElementCount > 0;
}

// ------------------------------------------------------------ console

async function runConsole(e) {
  e.preventDefault();
  const input = $('console-input');
  const code = input.value;
  if (!code.trim()) return;
  if (S.history[S.history.length - 1] !== code) S.history.push(code);
  if (S.history.length > 200) S.history.shift();
  S.histPos = S.history.length;
  try {
    sessionStorage.setItem('tp-admin-history', JSON.stringify(S.history));
  } catch {
    // Private mode: no history kept.
  }
  input.value = '';
  const out = $('console-output');
  const entry = h('div', { class: 'entry running' }, h('pre', { class: 'code' }, code));
  out.append(entry);
  out.scrollTop = out.scrollHeight;
  try {
    const r = await call('POST', '/api/admin/console', { code });
    if (r.output) entry.append(h('pre', { class: 'output' }, r.output));
    if (r.ok) {
      entry.append(h('pre', { class: `result${r.result ? '' : ' empty'}` }, r.result || '(no value)'));
    } else {
      entry.append(h('pre', { class: 'error' }, r.error || 'error'));
    }
    entry.dataset.ok = String(!!r.ok);
  } catch (err) {
    entry.append(h('pre', { class: 'error' }, err instanceof ApiError ? err.describe() : String(err)));
    entry.dataset.ok = 'false';
  }
  entry.classList.remove('running');
  while (out.childElementCount > 300) out.firstElementChild.remove();
  out.scrollTop = out.scrollHeight;
}

function consoleKey(e) {
  const input = $('console-input');
  if (e.key === 'ArrowUp') {
    if (S.histPos > 0) {
      S.histPos -= 1;
      input.value = S.history[S.histPos];
    }
    e.preventDefault();
  } else if (e.key === 'ArrowDown') {
    if (S.histPos < S.history.length) {
      S.histPos += 1;
      input.value = S.history[S.histPos] ?? '';
    }
    e.preventDefault();
  }
}

// ------------------------------------------------------------ charts

const COLORS = {
  tp: '#6ea8ff', http: '#facc15', p50: '#4ade80', p95: '#6ea8ff', p99: '#f87171',
  conns: '#c084fc', turns: '#6ea8ff', axis: '#93a0bf', grid: 'rgba(39, 49, 79, 0.9)',
};

function chartSpecs() {
  const src = $('latency-source').value === 'http' ? 'http' : 'tp';
  return [
    { id: 'chart-rate', legend: 'legend-rate', unit: 'req/s', data: S.samples, series: [
      { key: 'tp_rate', label: 'TP', color: COLORS.tp },
      { key: 'http_rate', label: 'HTTP', color: COLORS.http }] },
    { id: 'chart-latency', legend: 'legend-latency', unit: 'ms', scale: 1000, data: S.samples, series: [
      { key: `${src}_p50`, label: 'p50', color: COLORS.p50 },
      { key: `${src}_p95`, label: 'p95', color: COLORS.p95 },
      { key: `${src}_p99`, label: 'p99', color: COLORS.p99 }] },
    { id: 'chart-conns', legend: 'legend-conns', unit: 'open', integer: true, data: S.samples, series: [
      { key: 'connections', label: 'connections', color: COLORS.conns }] },
    { id: 'chart-turns', legend: 'legend-turns', unit: 'ms', bars: true, data: S.turns, series: [
      { key: 'ms', label: 'turn', color: COLORS.turns }] },
  ];
}

// A step of 1, 2 or 5 times a power of ten giving about n intervals.
function niceStep(max, n = 4) {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function fmtAxis(v, step) {
  if (v === 0) return '0';
  if (step >= 1000) return fmtInt(v / 1000) + 'k';
  if (step >= 1) return fmtInt(v);
  const digits = Math.min(4, Math.max(0, -Math.floor(Math.log10(step))));
  return v.toFixed(digits);
}

function fmtValue(v, unit, integer) {
  if (v === null || v === undefined) return '–';
  const text = integer || v >= 100 ? fmtInt(v) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${text} ${unit}`;
}

function renderLegend(spec) {
  const box = $(spec.legend);
  const sig = spec.series.map((s) => s.label).join('|');
  if (box.dataset.sig === sig) return box;
  box.dataset.sig = sig;
  clear(box);
  for (const s of spec.series) {
    const sw = h('span', { class: `swatch${spec.bars ? ' bar' : ''}` });
    sw.style.background = s.color;
    box.append(h('span', { class: 'item', dataset: { key: s.key } }, sw, s.label, ' ', h('b', { class: 'last' })));
  }
  return box;
}

// The time shown: the last hour, or less while the history is shorter
// (a server just started), at least 10 minutes.
function chartSpan() {
  const end = serverNow();
  let oldest = end;
  for (const list of [S.samples, S.turns]) {
    if (list.length && typeof list[0].t === 'number') oldest = Math.min(oldest, list[0].t);
  }
  const span = Math.max(600, Math.ceil((end - oldest + S.interval) / 300) * 300);
  return Math.min(3600, span);
}

function drawChart(spec, span) {
  const canvas = $(spec.id);
  const legend = renderLegend(spec);
  const w = canvas.clientWidth;
  const hgt = canvas.clientHeight;
  if (!w || !hgt) return;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  ctx.font = '11px system-ui, sans-serif';

  const scale = spec.scale || 1;
  const end = serverNow();
  const start = end - span;
  const pts = spec.data.filter((d) => typeof d.t === 'number' && d.t >= start - S.interval);
  const val = (d, key) => {
    const v = d[key];
    return typeof v === 'number' && Number.isFinite(v) ? v * scale : null;
  };
  let max = 0;
  let count = 0;
  for (const d of pts) {
    for (const s of spec.series) {
      const v = val(d, s.key);
      if (v !== null) {
        max = Math.max(max, v);
        count += 1;
      }
    }
  }
  // The latest value of each series, next to its name.
  for (const s of spec.series) {
    const item = legend.querySelector(`[data-key="${s.key}"] .last`);
    let last = null;
    for (let i = pts.length - 1; i >= 0 && last === null; i -= 1) last = val(pts[i], s.key);
    if (item) item.textContent = last === null ? '' : fmtValue(last, spec.unit, spec.integer);
  }
  canvas.dataset.points = String(count);
  canvas.dataset.max = String(max);

  const pad = { l: 42, r: 10, t: 10, b: 20 };
  const pw = Math.max(10, w - pad.l - pad.r);
  const ph = Math.max(10, hgt - pad.t - pad.b);
  let step = niceStep(max > 0 ? max : 1);
  if (spec.integer) step = Math.max(1, Math.round(step));
  let top = Math.max(step, Math.ceil((max > 0 ? max : 1) / step) * step);
  if (max > 0 && top - max < step * 0.15) top += step;   // the line off the frame
  const X = (t) => pad.l + ((t - start) / span) * pw;
  const Y = (v) => pad.t + ph - (v / top) * ph;

  // Grid, value axis.
  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.axis;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = Math.round(Y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(pad.l + pw, y);
    ctx.stroke();
    if (count > 0) ctx.fillText(fmtAxis(v, step), pad.l - 5, y);
    if (count === 0) break;
  }
  if (count > 0) {
    ctx.save();
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.fillText(spec.unit, pad.l + 4, pad.t + 1);
    ctx.restore();
  }
  // Time axis: ticks on round minutes of the clock, labelled as room allows.
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const tickStep = [60, 120, 300, 600, 900, 1200, 1800].find((st) => (pw * st) / span >= 46) || 1800;
  const first = Math.ceil(start / tickStep) * tickStep;
  for (let t = first; t <= end; t += tickStep) {
    const x = Math.round(X(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, pad.t + ph);
    ctx.lineTo(x, pad.t + ph + 4);
    ctx.stroke();
    if (x - 16 >= pad.l - 6 && x + 16 <= w) {
      const d = new Date((t - S.clockOffset) * 1000);
      ctx.fillText(`${pad2(d.getHours())}:${pad2(d.getMinutes())}`, x, pad.t + ph + 6);
    }
  }

  if (count === 0) {
    canvas.dataset.empty = 'true';
    ctx.fillStyle = COLORS.axis;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = '13px system-ui, sans-serif';
    ctx.fillText(pts.length || spec.data.length ? 'no data in the last hour' : 'no data yet', pad.l + pw / 2, pad.t + ph / 2);
    return;
  }
  canvas.dataset.empty = 'false';

  ctx.save();
  ctx.beginPath();
  ctx.rect(pad.l, pad.t - 2, pw, ph + 2);
  ctx.clip();
  if (spec.bars) {
    const s = spec.series[0];
    const bw = Math.max(3, Math.min(14, ((pw * S.interval) / span) * 0.8));
    ctx.fillStyle = s.color;
    for (const d of pts) {
      const v = val(d, s.key);
      if (v === null) continue;
      const x = X(d.t);
      const y = Y(v);
      ctx.fillRect(x - bw / 2, y, bw, Math.max(1, pad.t + ph - y));
    }
  } else {
    ctx.lineWidth = 1.8;
    ctx.lineJoin = 'round';
    for (const s of spec.series) {
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      // Runs of values between the nulls: lines, a lone value a dot.
      let run = [];
      const dots = (pw * S.interval) / span >= 5;    // room: each sample seen
      const flush = () => {
        if (dots) {
          for (const [x, y] of run) {
            ctx.beginPath();
            ctx.arc(x, y, 2, 0, Math.PI * 2);
            ctx.fill();
          }
        }
        if (run.length === 1 && !dots) {
          ctx.beginPath();
          ctx.arc(run[0][0], run[0][1], 2.2, 0, Math.PI * 2);
          ctx.fill();
        } else if (run.length > 1) {
          ctx.beginPath();
          run.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
          ctx.stroke();
        }
        run = [];
      };
      let prevT = null;
      for (const d of pts) {
        const v = val(d, s.key);
        // A gap in the samples (server busy or restarted) breaks the line.
        if (v === null || (prevT !== null && d.t - prevT > S.interval * 2.5)) flush();
        if (v !== null) run.push([X(d.t), Y(v)]);
        prevT = d.t;
      }
      flush();
    }
  }
  ctx.restore();
}

let drawQueued = false;
function drawCharts() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    if (S.view !== 'dash') return;
    const span = chartSpan();
    $('charts-span').textContent = span >= 3600 ? 'the last hour' : `the last ${Math.round(span / 60)} minutes`;
    for (const spec of chartSpecs()) drawChart(spec, span);
  });
}

// ------------------------------------------------------------ forms

function wire() {
  $('login-form').addEventListener('submit', login);
  $('logout-btn').addEventListener('click', logout);
  $('action-result-close').addEventListener('click', () => { $('action-result').hidden = true; });
  wireConfirm();

  const simple = {
    'btn-end-turn': 'turn.now', 'btn-pause': 'turn.pause', 'btn-resume': 'turn.resume',
    'btn-reset-timer': 'turn.reset', 'btn-reload': 'reload', 'btn-reload-ruleset': 'reload_ruleset',
    'btn-unlock': 'unlock', 'btn-shutdown': 'shutdown',
  };
  for (const [id, action] of Object.entries(simple)) {
    $(id).addEventListener('click', (e) => runAction(action, [], e.currentTarget));
  }

  const mode = $('turn-mode');
  mode.addEventListener('change', () => { mode.dataset.dirty = '1'; });
  $('turn-mode-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await runAction('turn.mode', [mode.value], $('btn-turn-mode'));
    if (r) delete mode.dataset.dirty;
  });
  const len = $('turn-length');
  len.addEventListener('input', () => { len.dataset.dirty = '1'; });
  $('turn-length-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const n = Number(len.value);
    if (!Number.isInteger(n) || n < 0) {
      showResult('The turn length is a whole number of seconds, 0 or more (0: no limit).', false);
      return;
    }
    const r = await runAction('turn.length', [n], $('btn-turn-length'));
    if (r) delete len.dataset.dirty;
  });

  $('add-player-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const args = [$('add-name').value.trim(), $('add-password').value];
    const email = $('add-email').value.trim();
    if (email) args.push(email);
    const r = await runAction('add_player', args, $('add-btn'));
    if (r) e.target.reset();
  });

  $('broadcast-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await runAction('broadcast', [$('broadcast-subject').value, $('broadcast-body').value], $('broadcast-btn'));
    if (r) e.target.reset();
  });

  $('log-level-form').addEventListener('submit', (e) => {
    e.preventDefault();
    runAction('log_level', [$('server-log-level').value], $('btn-log-level'));
  });

  $('backup-form').addEventListener('submit', (e) => {
    e.preventDefault();
    runAction('backup', [$('backup-dir').value.trim()], $('backup-btn'));
  });

  $('log-level').addEventListener('change', setLogLevel);
  $('log-follow').addEventListener('change', setLogLevel);
  // Scrolling up to read stops the following; back at the end, it goes on.
  const log = $('log');
  log.addEventListener('scroll', () => {
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    if ($('log-follow').checked !== atEnd) $('log-follow').checked = atEnd;
  });
  $('latency-source').addEventListener('change', drawCharts);

  $('console-form').addEventListener('submit', runConsole);
  $('console-input').addEventListener('keydown', consoleKey);
  try {
    S.history = JSON.parse(sessionStorage.getItem('tp-admin-history') || '[]');
  } catch {
    S.history = [];
  }
  S.histPos = S.history.length;

  if (window.ResizeObserver) {
    new ResizeObserver(() => drawCharts()).observe($('charts-card'));
    new ResizeObserver(() => {
      if ($('log-follow').checked) log.scrollTop = log.scrollHeight;
    }).observe(log);
  } else {
    window.addEventListener('resize', drawCharts);
  }
  // The time axis moves even without samples.
  setInterval(drawCharts, 30000);
  setInterval(tick, 250);
}

function exposeDebug() {
  // For tests and the curious.
  window.tpAdmin = {
    view: () => S.view,
    turn: () => (S.status ? S.status.turn : null),
    secondsLeft: () => (S.deadline === null ? null : Math.max(0, S.deadline - performance.now() / 1000)),
    samples: () => S.samples.length,
    turns: () => S.turns.length,
    live: () => !!S.es && S.es.readyState === EventSource.OPEN,
    actions: () => [...S.actions.keys()],
  };
}

async function start() {
  wire();
  exposeDebug();
  let s = null;
  try {
    s = await call('GET', '/api/admin/session');
  } catch {
    s = null;
  }
  if (s && s.csrf) {
    S.csrf = s.csrf;
    S.name = s.name;
    await enterDash();
  } else {
    showLogin('');
  }
  document.body.dataset.ready = 'true';
}

start();
