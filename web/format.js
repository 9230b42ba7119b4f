// Small helpers: building DOM elements, and showing numbers, times and
// parameter values readably.

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'textContent']);

// h('li', {class: 'x', onclick: fn}, 'text', child, ...)
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, val] of Object.entries(props || {})) {
    if (val === undefined || val === null || val === false) {
      continue;
    }
    if (key === 'class') {
      el.className = val;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, val);
    } else if (key.startsWith('on') && typeof val === 'function') {
      el.addEventListener(key.slice(2), val);
    } else if (PROPS.has(key)) {
      el[key] = val;
    } else {
      el.setAttribute(key, val === true ? '' : String(val));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) {
      el.append(c instanceof Node ? c : String(c));
    }
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

const integer = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumSignificantDigits: 3 });

export function fmtInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? integer.format(n) : String(n);
}

export function fmtCompact(n) {
  return typeof n === 'number' && Number.isFinite(n) ? compact.format(n) : String(n);
}

export function fmtCoords(v) {
  if (!v) {
    return '–';
  }
  return `${fmtInt(v.x)}, ${fmtInt(v.y)}, ${fmtInt(v.z)}`;
}

// 3725 -> "1:02:05", 65 -> "1:05"
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  if (hh > 0) {
    return `${hh}:${String(mm).padStart(2, '0')}:${ss}`;
  }
  return `${mm}:${ss}`;
}

export function plural(n, one, many) {
  return `${fmtInt(n)} ${n === 1 ? one : (many || `${one}s`)}`;
}

// TP04 generic reference types (messages, object parameters).
const REF_TYPES = {
  0: 'misc', 1: 'object', 2: 'order type', 3: 'order', 4: 'board', 5: 'message',
  6: 'resource', 7: 'player', 8: 'category', 9: 'design', 10: 'component',
  11: 'property', 12: 'object type', 13: 'order queue',
};

export function refTypeName(reftype) {
  return REF_TYPES[reftype] || (reftype < 0 ? `action ${-reftype}` : `type ${reftype}`);
}

// names: { object(id), player(id), design(id), resource(id), ordertype(id) }
// each returning a name or undefined.
export function refText(reftype, id, names) {
  const lookup = {
    1: names.object, 2: names.ordertype, 6: names.resource, 7: names.player, 9: names.design,
  }[reftype];
  const name = lookup ? lookup(id) : undefined;
  if (name !== undefined && name !== null && name !== '') {
    return name;
  }
  if (reftype === 7 && id === 0) {
    return 'nobody';
  }
  const kind = REF_TYPES[reftype];
  if (kind) {
    return `${kind} #${id}`;
  }
  return reftype < 0 ? `action ${-reftype}` : `ref ${reftype}:${id}`;
}

// A value whose type we do not know: key = value pairs, nested.
export function genericText(v) {
  if (v === null || v === undefined) {
    return '–';
  }
  if (Array.isArray(v)) {
    return v.length ? v.map(genericText).join('; ') : 'none';
  }
  if (typeof v === 'object') {
    const parts = Object.entries(v).map(([k, x]) => `${k}: ${genericText(x)}`);
    return parts.length ? parts.join(', ') : '–';
  }
  return typeof v === 'number' ? fmtInt(v) : String(v);
}

// An object parameter ({group, name, type, value}) as text.
export function objectParamText(p, names) {
  const v = p.value || {};
  switch (p.type) {
    case 'position':
    case 'velocity':
    case 'acceleration': {
      const rel = v.relative ? ` (relative to ${refText(1, v.relative, names)})` : '';
      return fmtCoords(v) + rel;
    }
    case 'size':
      return fmtInt(v.size);
    case 'integer':
      return fmtInt(v.value);
    case 'media':
      return v.url || '–';
    case 'order_queue':
      return `queue #${v.queueid}`;
    case 'bound_position':
      return `slot ${v.slot}`;
    case 'reference':
      return refText(v.reftype, v.id, names);
    case 'reference_quantity_list': {
      const refs = v.references || [];
      return refs.length
        ? refs.map((r) => `${fmtInt(r.count)} × ${refText(r.reftype, r.id, names)}`).join(', ')
        : 'none';
    }
    case 'resource_list': {
      const list = v.resources || [];
      if (!list.length) {
        return 'none';
      }
      return list.map((r) => {
        const name = refText(6, r.resource, names);
        const bits = [`${fmtInt(r.stored)} stored`];
        if (r.minable) bits.push(`${fmtInt(r.minable)} minable`);
        if (r.unavailable) bits.push(`${fmtInt(r.unavailable)} unavailable`);
        return `${name}: ${bits.join(', ')}`;
      }).join('; ');
    }
    default:
      return genericText(v);
  }
}

// An order parameter ({name, type, value}) as a short summary.
export function orderParamText(p, names) {
  const v = p.value || {};
  switch (p.type) {
    case 'abs_coords':
      return fmtCoords(v);
    case 'time':
      return plural(v.turns ?? 0, 'turn');
    case 'object':
      return v.objectid ? refText(1, v.objectid, names) : 'no object';
    case 'player':
      return v.playerid ? refText(7, v.playerid, names) : 'nobody';
    case 'rel_coords':
      return `${fmtCoords(v)} from ${refText(1, v.objectid, names)}`;
    case 'range':
      return fmtInt(v.value);
    case 'list': {
      const byId = new Map((v.possibleselections || []).map((s) => [s.id, s.name]));
      const sel = (v.selection || []).filter((s) => s.number);
      return sel.length ? sel.map((s) => `${fmtInt(s.number)} × ${byId.get(s.id) ?? `#${s.id}`}`).join(', ') : 'nothing';
    }
    case 'string':
      return v.string ? `“${v.string}”` : '“”';
    case 'reference':
      return `#${v.reference}`;
    case 'reference_list':
      return (v.references || []).map((r) => `#${r}`).join(', ') || 'none';
    case 'resource_list': {
      const sel = (v.selected || []).filter((s) => s.quantity);
      return sel.length ? sel.map((s) => `${fmtInt(s.quantity)} × ${refText(6, s.resourcetype, names)}`).join(', ') : 'nothing';
    }
    case 'generic_reference_quantity_list': {
      const byId = new Map((v.possibles || []).map((s) => [s.optionid, s.name]));
      const sel = (v.selection || []).filter((s) => s.number);
      return sel.length ? sel.map((s) => `${fmtInt(s.number)} × ${byId.get(s.id) ?? `#${s.id}`}`).join(', ') : 'nothing';
    }
    default:
      return genericText(v);
  }
}
