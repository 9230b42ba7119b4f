// The order queue of the selected object and the form to add an order.
//
// The form's inputs are built from what the server would make of a new
// order of the chosen type (POST .../orders/probe with no parameters):
// its list choices, ranges, limits and defaults. Every order parameter
// type of the protocol has an input; what the player chose is sent as
// {name: {field: value}} (docs/http.md).

import { api, ApiError } from './api.js';
import { h, clear, fmtInt, fmtCoords, orderParamText, plural, refText, refTypeName } from './format.js';

const $ = (id) => document.getElementById(id);

export class OrderPanel {
  // ctx: { names, objects(): [object], players(): [player],
  //        ordertypes(): Map id -> description, startPick(label, cb),
  //        cancelPick(), onQueue(objectId, queue), onSessionLost(err) }
  constructor(ctx) {
    this.ctx = ctx;
    this.obj = null;
    this.queue = null;
    this.widgets = [];
    this.probeSeq = 0;
    this.estimateTimer = null;
    this.el = {
      queue: $('order-queue'), queueEmpty: $('order-queue-empty'), form: $('order-form'),
      type: $('order-type'), typeDesc: $('order-type-desc'), params: $('order-params'),
      estimate: $('order-estimate'), add: $('order-add'), error: $('order-error'),
    };
    this.el.type.addEventListener('change', () => this.chooseType());
    this.el.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.el.params.addEventListener('input', () => this.estimateSoon());
    this.el.params.addEventListener('change', () => this.estimateSoon());
  }

  // Shows the queue of obj; keep: the same object again (after a turn):
  // the form the player may be filling in stays as it is.
  async show(obj, keep = false) {
    const same = keep && this.obj && this.obj.id === obj.id;
    this.obj = obj;
    if (!same) {
      this.resetForm();
    }
    await this.refreshQueue(same);
  }

  hide() {
    this.obj = null;
    this.queue = null;
    this.resetForm();
  }

  resetForm() {
    this.widgets = [];
    this.probeSeq++;
    this.ctx.cancelPick();
    clear(this.el.params);
    clear(this.el.type);
    this.el.typeDesc.textContent = '';
    this.el.estimate.textContent = '';
    this.el.add.disabled = true;
    this.showError(null);
  }

  showError(err) {
    const e = this.el.error;
    if (!err) {
      e.hidden = true;
      e.textContent = '';
      return;
    }
    e.textContent = err instanceof ApiError ? err.describe() : err.message || String(err);
    e.hidden = false;
  }

  async refreshQueue(keepForm = true) {
    const obj = this.obj;
    if (!obj) {
      return;
    }
    let q;
    try {
      q = await api('GET', `api/objects/${obj.id}/orders`);
    } catch (err) {
      if (this.obj !== obj) return;
      this.ctx.onSessionLost(err);
      this.queue = null;
      clear(this.el.queue);
      this.showError(err);
      return;
    }
    if (this.obj !== obj) {
      return;               // another object was selected meanwhile
    }
    this.queue = q;
    this.ctx.onQueue(obj.id, q);
    this.renderQueue();
    this.renderTypes(keepForm);
  }

  renderQueue() {
    const list = clear(this.el.queue);
    const orders = this.queue.orders || [];
    this.el.queueEmpty.hidden = orders.length > 0;
    const names = this.ctx.names;
    for (const o of orders) {
      const params = o.params || [];
      const summary = params.map((p) => (params.length > 1 ? `${p.name}: ` : '') + orderParamText(p, names))
        .join(' · ');
      const cost = (o.resources || []).filter((r) => r.amount)
        .map((r) => `${fmtInt(r.amount)} ${refText(6, r.resource, names)}`).join(', ');
      list.append(h('li', { class: 'order', dataset: { slot: o.slot, otype: o.otype } },
        h('div', { class: 'order-main' },
          h('span', { class: 'order-name' }, o.name || `type ${o.otype}`),
          summary && h('span', { class: 'order-summary' }, summary)),
        h('div', { class: 'order-side' },
          h('span', { class: 'order-turns' }, plural(o.turns ?? 0, 'turn')),
          cost && h('span', { class: 'order-cost' }, cost),
          h('button', {
            type: 'button', class: 'order-remove ghost small', id: `order-remove-${o.slot}`,
            title: 'Remove this order', 'aria-label': `Remove order ${o.slot + 1}`,
            onclick: () => this.remove(o.slot),
          }, 'Remove'))));
    }
  }

  // The order types this queue takes, in the select.
  renderTypes(keep) {
    const sel = this.el.type;
    const allowed = this.queue.allowed || [];
    const current = keep ? sel.value : '';
    const key = allowed.join(',');
    if (keep && sel.dataset.allowed === key) {
      return;
    }
    const types = this.ctx.ordertypes();
    clear(sel);
    sel.dataset.allowed = key;
    sel.append(h('option', { value: '' }, allowed.length ? 'Choose an order…' : 'No orders allowed'));
    for (const id of allowed) {
      const t = types.get(id);
      sel.append(h('option', { value: String(id) }, t ? t.name : `Order type ${id}`));
    }
    sel.disabled = allowed.length === 0;
    if (current && allowed.includes(Number(current))) {
      sel.value = current;
    } else if (current) {
      // The chosen type is not allowed any more: its inputs go.
      this.widgets = [];
      clear(this.el.params);
      this.el.typeDesc.textContent = '';
      this.el.estimate.textContent = '';
      this.el.add.disabled = true;
    }
  }

  async remove(slot) {
    const obj = this.obj;
    this.showError(null);
    try {
      await api('DELETE', `api/objects/${obj.id}/orders/${slot}`);
    } catch (err) {
      this.ctx.onSessionLost(err);
      this.showError(err);
    }
    await this.refreshQueue(true);
  }

  // ---------------------------------------------------------- the form

  async chooseType() {
    const otype = this.el.type.value === '' ? null : Number(this.el.type.value);
    const seq = ++this.probeSeq;
    this.widgets = [];
    this.ctx.cancelPick();
    clear(this.el.params);
    this.el.estimate.textContent = '';
    this.el.add.disabled = true;
    this.showError(null);
    const desc = otype === null ? null : this.ctx.ordertypes().get(otype);
    this.el.typeDesc.textContent = desc ? desc.description : '';
    if (otype === null) {
      return;
    }
    let order;
    try {
      order = await api('POST', `api/objects/${this.obj.id}/orders/probe`, { otype, params: {} });
    } catch (err) {
      if (seq !== this.probeSeq) return;
      this.ctx.onSessionLost(err);
      this.showError(err);
      return;
    }
    if (seq !== this.probeSeq) {
      return;
    }
    this.otype = otype;
    (order.params || []).forEach((p, i) => {
      const w = this.widget(p, i, desc);
      this.widgets.push(w);
      this.el.params.append(w.el);
    });
    this.showEstimate(order);
    this.el.add.disabled = false;
    this.el.form.dataset.otype = String(otype);
  }

  // The values chosen, as the API takes them; throws on a bad input.
  gather() {
    const params = {};
    for (const w of this.widgets) {
      params[w.name] = w.read();
    }
    return params;
  }

  showEstimate(order, prefix = '') {
    const names = this.ctx.names;
    const bits = [];
    if (typeof order.turns === 'number') {
      bits.push(`takes ${plural(order.turns, 'turn')}`);
    }
    const cost = (order.resources || []).filter((r) => r.amount)
      .map((r) => `${fmtInt(r.amount)} ${refText(6, r.resource, names)}`);
    if (cost.length) {
      bits.push(`costs ${cost.join(', ')}`);
    }
    const text = bits.join(', ');
    this.el.estimate.textContent = prefix + (text ? text.charAt(0).toUpperCase() + text.slice(1) : '');
  }

  // Asks the server again what the order would be, once typing stops.
  estimateSoon() {
    clearTimeout(this.estimateTimer);
    if (!this.widgets.length) {
      return;
    }
    this.estimateTimer = setTimeout(async () => {
      let params;
      try {
        params = this.gather();
      } catch {
        return;
      }
      const seq = this.probeSeq;
      const obj = this.obj;
      try {
        const order = await api('POST', `api/objects/${obj.id}/orders/probe`, { otype: this.otype, params });
        if (seq === this.probeSeq && obj === this.obj) {
          this.showEstimate(order);
        }
      } catch (err) {
        if (seq === this.probeSeq && obj === this.obj) {
          this.el.estimate.textContent = `Not accepted as it is: ${err.message}`;
        }
      }
    }, 450);
  }

  async submit() {
    if (!this.obj || !this.widgets || this.el.add.disabled) {
      return;
    }
    this.showError(null);
    let params;
    try {
      params = this.gather();
    } catch (err) {
      this.showError(err);
      return;
    }
    const obj = this.obj;
    this.el.add.disabled = true;
    try {
      const order = await api('POST', `api/objects/${obj.id}/orders`, { otype: this.otype, slot: -1, params });
      this.showEstimate(order, `Added ${order.name || 'the order'}. `);
    } catch (err) {
      this.ctx.onSessionLost(err);
      this.showError(err);
    } finally {
      this.el.add.disabled = false;
    }
    await this.refreshQueue(true);
  }

  // ---------------------------------------------------------- inputs

  // One parameter's input: { name, el, read() }.
  widget(p, i, desc) {
    const v = p.value || {};
    const id = (field) => `order-param-${i}-${field}`;
    const ptype = p.type;
    const descParam = desc && desc.parameters ? desc.parameters.find((d) => d.name === p.name) : null;
    const help = p.description || (descParam && descParam.description) || '';
    const box = h('fieldset', { class: 'param', dataset: { param: p.name, type: ptype }, id: id('box') },
      h('legend', {}, p.name, h('span', { class: 'ptype' }, ptype.replace(/_/g, ' '))),
      help && h('p', { class: 'hint' }, help));
    const names = this.ctx.names;
    let read;

    switch (ptype) {
      case 'abs_coords': {
        const xyz = coordInputs(id, v);
        box.append(xyz.el, this.pickButton(id('pick'), 'Pick on map', (pt, obj) => {
          xyz.set(obj && obj.pos ? obj.pos : { ...pt, z: Number(xyz.inputs.z.value) || 0 });
        }));
        read = () => xyz.read();
        break;
      }
      case 'time': {
        const max = typeof v.maxtime === 'number' && v.maxtime >= 0 ? v.maxtime : undefined;
        const input = numberInput(id('turns'), v.turns ?? 0, { min: 0, max });
        box.append(labelled('Turns', input), max !== undefined && h('span', { class: 'hint' }, ` at most ${fmtInt(max)}`));
        read = () => {
          const n = intOf(input, `${p.name} turns`);
          if (n < 0 || (max !== undefined && n > max)) {
            throw new Error(`${p.name}: between 0 and ${max ?? '∞'} turns`);
          }
          return { turns: n };
        };
        break;
      }
      case 'object': {
        const sel = this.objectSelect(id('object'), v.objectid, v.validtypes);
        box.append(labelled('Object', sel), this.pickButton(id('pick'), 'Pick on map', (pt, obj) => {
          if (obj && [...sel.options].some((o) => Number(o.value) === obj.id)) {
            sel.value = String(obj.id);
            sel.dispatchEvent(new Event('change', { bubbles: true }));
          }
        }));
        read = () => ({ objectid: Number(sel.value) });
        break;
      }
      case 'player': {
        const sel = h('select', { id: id('player') }, h('option', { value: '0' }, '— nobody —'),
          this.ctx.players().map((pl) => h('option', { value: String(pl.id) }, pl.name)));
        sel.value = String(v.playerid ?? 0);
        box.append(labelled('Player', sel));
        read = () => ({ playerid: Number(sel.value) });
        break;
      }
      case 'rel_coords': {
        const sel = this.objectSelect(id('object'), v.objectid, null);
        const xyz = coordInputs(id, v);
        box.append(labelled('From object', sel), h('p', { class: 'hint' }, 'Offset from it:'), xyz.el,
          this.pickButton(id('pick'), 'Pick on map', (pt, obj) => {
            const base = this.ctx.objects().find((o) => o.id === Number(sel.value));
            const target = obj && obj.pos ? obj.pos : pt;
            if (base && base.pos) {
              xyz.set({ x: target.x - base.pos.x, y: target.y - base.pos.y, z: (target.z || 0) - (base.pos.z || 0) });
            }
          }));
        read = () => ({ objectid: Number(sel.value), ...xyz.read() });
        break;
      }
      case 'range': {
        const opts = { min: v.minvalue, max: v.maxvalue, step: v.increment > 0 ? v.increment : 1 };
        const slider = h('input', { type: 'range', id: id('slider'), ...opts, value: v.value ?? v.minvalue ?? 0 });
        const input = numberInput(id('value'), v.value ?? v.minvalue ?? 0, opts);
        slider.addEventListener('input', () => { input.value = slider.value; });
        input.addEventListener('input', () => { slider.value = input.value; });
        box.append(h('div', { class: 'range-row' }, slider, input),
          h('span', { class: 'hint' }, `${fmtInt(v.minvalue)} to ${fmtInt(v.maxvalue)}, step ${fmtInt(opts.step)}`));
        read = () => {
          const n = intOf(input, 'value');
          if (n < v.minvalue || n > v.maxvalue) {
            throw new Error(`${p.name}: the value must be between ${v.minvalue} and ${v.maxvalue}`);
          }
          return { value: n };
        };
        break;
      }
      case 'list': {
        const chosen = new Map((v.selection || []).map((s) => [s.id, s.number]));
        const rows = (v.possibleselections || []).map((s) => ({
          id: s.id,
          input: numberInput(id(`opt-${s.id}`), chosen.get(s.id) || 0, { min: 0, max: s.maxnum }),
          label: s.name, max: s.maxnum,
        }));
        box.append(choiceTable(rows, 'Number'));
        if (!rows.length) box.append(h('p', { class: 'hint' }, 'Nothing to choose from.'));
        read = () => ({ selection: quantities(rows, p.name, 'id', 'number') });
        break;
      }
      case 'string': {
        const max = v.maxlength > 0 ? v.maxlength : undefined;
        const input = h('input', { type: 'text', id: id('string'), value: v.string ?? '', maxlength: max });
        box.append(labelled('Text', input));
        read = () => {
          if (max !== undefined && [...input.value].length > max) {
            throw new Error(`${p.name}: at most ${max} characters`);
          }
          return { string: input.value };
        };
        break;
      }
      case 'reference': {
        const input = numberInput(id('reference'), v.reference ?? 0, {});
        box.append(labelled('Reference', input), allowedHint(v.allowed));
        read = () => ({ reference: intOf(input, 'reference') });
        break;
      }
      case 'reference_list': {
        const input = h('input', { type: 'text', id: id('references'), inputmode: 'numeric',
          placeholder: 'e.g. 3, 7, 12', value: (v.references || []).join(', ') });
        box.append(labelled('References', input), allowedHint(v.allowed));
        read = () => ({ references: idList(input.value, p.name) });
        break;
      }
      case 'resource_list': {
        const chosen = new Map((v.selected || []).map((s) => [s.resourcetype, s.quantity]));
        const rows = (v.allowed || []).map((a) => ({
          id: a.resourcetype,
          input: numberInput(id(`res-${a.resourcetype}`), chosen.get(a.resourcetype) || 0, { min: 0, max: a.max }),
          label: refText(6, a.resourcetype, names), max: a.max,
        }));
        box.append(choiceTable(rows, 'Quantity'));
        const limits = [];
        if (v.maxmass) limits.push(`mass at most ${fmtInt(v.maxmass)}`);
        if (v.maxvolume) limits.push(`volume at most ${fmtInt(v.maxvolume)}`);
        if (limits.length) box.append(h('p', { class: 'hint' }, limits.join(', ')));
        read = () => ({ selected: quantities(rows, p.name, 'resourcetype', 'quantity') });
        break;
      }
      case 'generic_reference_quantity_list': {
        const chosen = new Map((v.selection || []).map((s) => [s.id, s.number]));
        const rows = (v.possibles || []).map((s) => ({
          id: s.optionid,
          input: numberInput(id(`opt-${s.optionid}`), chosen.get(s.optionid) || 0,
            { min: 0, max: s.max >= 0 ? s.max : undefined }),
          label: s.name || `option ${s.optionid}`, max: s.max >= 0 ? s.max : undefined,
        }));
        box.append(choiceTable(rows, 'Number'));
        if (!rows.length) box.append(h('p', { class: 'hint' }, 'Nothing to choose from.'));
        read = () => ({ selection: quantities(rows, p.name, 'id', 'number') });
        break;
      }
      default: {
        // A type this page does not know: its value as JSON, editable.
        const area = h('textarea', { id: id('json'), rows: 3, class: 'mono' });
        area.value = JSON.stringify(v);
        box.append(labelled('Value (JSON)', area));
        read = () => {
          try {
            return JSON.parse(area.value);
          } catch {
            throw new Error(`${p.name}: the value is not valid JSON`);
          }
        };
      }
    }
    return { name: p.name, type: ptype, el: box, read };
  }

  objectSelect(elId, current, validtypes) {
    const valid = Array.isArray(validtypes) && validtypes.length ? new Set(validtypes) : null;
    const objs = this.ctx.objects()
      .filter((o) => !valid || valid.has(o.type))
      .sort((a, b) => (a.name || '').localeCompare(b.name || '') || a.id - b.id);
    const sel = h('select', { id: elId }, h('option', { value: '0' }, '— none —'),
      objs.map((o) => h('option', { value: String(o.id) }, `${o.name} (${o.type_name}, #${o.id})`)));
    sel.value = String(current ?? 0);
    if (sel.value === '') sel.value = '0';
    return sel;
  }

  pickButton(elId, label, onPick) {
    const btn = h('button', { type: 'button', id: elId, class: 'ghost small pick' }, label);
    btn.addEventListener('click', () => {
      btn.classList.add('active');
      this.ctx.startPick((pt, obj) => {
        btn.classList.remove('active');
        if (pt) {
          onPick(pt, obj);
          this.estimateSoon();
        }
      });
    });
    return btn;
  }
}

// ------------------------------------------------------------ helpers

function numberInput(elId, value, { min, max, step } = {}) {
  return h('input', { type: 'number', id: elId, value: String(value ?? 0), min, max, step: step ?? 1, inputmode: 'numeric' });
}

function labelled(text, input) {
  return h('label', { class: 'field' }, h('span', {}, text), input);
}

function intOf(input, what) {
  const s = input.value.trim();
  const n = Number(s);
  if (s === '' || !Number.isInteger(n)) {
    throw new Error(`${what}: “${input.value}” is not a whole number`);
  }
  return n;
}

function coordInputs(id, v) {
  const inputs = {};
  const el = h('div', { class: 'coords' });
  for (const axis of ['x', 'y', 'z']) {
    inputs[axis] = numberInput(id(axis), v[axis] ?? 0, {});
    el.append(labelled(axis, inputs[axis]));
  }
  return {
    el, inputs,
    set(p) {
      for (const axis of ['x', 'y', 'z']) {
        if (typeof p[axis] === 'number') inputs[axis].value = String(Math.round(p[axis]));
      }
    },
    read() {
      return { x: intOf(inputs.x, 'x'), y: intOf(inputs.y, 'y'), z: intOf(inputs.z, 'z') };
    },
    toString() {
      return fmtCoords(this.read());
    },
  };
}

function choiceTable(rows, what) {
  return h('table', { class: 'choices' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Choice'), h('th', {}, what))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', {}, h('label', { for: r.input.id }, r.label),
        r.max !== undefined && h('span', { class: 'hint' }, ` (max ${fmtInt(r.max)})`)),
      h('td', {}, r.input)))));
}

// [{idKey: id, numKey: n}] for the rows with a number above 0.
function quantities(rows, pname, idKey, numKey) {
  const out = [];
  for (const r of rows) {
    const n = intOf(r.input, `${pname} ${r.label}`);
    if (n < 0 || (r.max !== undefined && n > r.max)) {
      throw new Error(`${pname}: ${r.label} must be between 0 and ${r.max}`);
    }
    if (n > 0) {
      out.push({ [idKey]: r.id, [numKey]: n });
    }
  }
  return out;
}

function idList(text, pname) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  return parts.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`${pname}: “${s}” is not an id`);
    }
    return n;
  });
}

function allowedHint(allowed) {
  if (!Array.isArray(allowed) || !allowed.length) {
    return null;
  }
  return h('p', { class: 'hint' }, `Allowed kinds: ${allowed.map(refTypeName).join(', ')}`);
}
