// The galaxy map: objects on a <canvas> at their universe coordinates,
// with pan (drag), zoom (wheel, pinch, buttons, keys), selection by
// clicking, labels where they fit, and lines for move orders.
//
// Universe coordinates are big integers (MiniSec: about 1e10 across,
// planets 1e4-1e5 from their star): the view keeps a centre in universe
// units and a scale in CSS pixels per unit. Screen y grows downwards,
// universe y upwards.

const TYPE_RANK = { 'Star System': 0, Planet: 1, Fleet: 2 };
// Which of the objects under a click comes first: what is drawn on top
// (fleets), then stars (planets of a zoomed-out system are folded in).
const HIT_RANK = { Fleet: 3, 'Star System': 2, Planet: 1 };
const HIT_RADIUS = 12;       // CSS pixels
const HIT_RADIUS_TOUCH = 20;
const MAX_SCALE = 20;        // pixels per unit, at most

export class GalaxyMap {
  // opts: styleOf(obj) -> {shape: 'star'|'planet'|'fleet'|'other', color},
  //       onSelect(id or null), onViewChange()
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.opts = opts;
    this.objects = [];          // drawable objects, in drawing order
    this.lines = [];            // {from: {x, y}, to: {x, y}, color}
    this.selected = null;
    this.hover = null;
    this.view = { cx: 0, cy: 0, scale: 1e-9 };
    this.width = 1;
    this.height = 1;
    this.dpr = 1;
    this.drawn = [];            // ids drawn inside the canvas at the last draw
    this.picking = null;        // callback of "pick on map"
    this.pointers = new Map();
    this.drag = null;
    this.lastClick = null;
    this.pending = false;
    this.extent = null;         // bounds of every drawable object
    this.fitIds = null;         // the objects of the last fit, until moved

    this.resize();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    // A change of device pixel ratio (browser zoom, another screen).
    window.addEventListener('resize', () => this.resize());
    this.bindInput();
  }

  // ---------------------------------------------------------- data

  setObjects(list) {
    this.objects = list
      .filter((o) => o.pos && o.type_name !== 'Universe' && o.type_name !== 'Galaxy')
      .sort((a, b) => (TYPE_RANK[a.type_name] ?? 3) - (TYPE_RANK[b.type_name] ?? 3) || a.id - b.id);
    this.extent = bounds(this.objects);
    if (this.selected !== null && !this.objects.some((o) => o.id === this.selected)) {
      this.selected = null;
    }
    this.redraw();
  }

  setLines(lines) {
    this.lines = lines;
    this.redraw();
  }

  select(id) {
    this.selected = id;
    this.redraw();
  }

  byId(id) {
    return this.objects.find((o) => o.id === id) || null;
  }

  // ---------------------------------------------------------- view

  resize() {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width));
    const hgt = Math.max(1, Math.round(rect.height));
    this.dpr = window.devicePixelRatio || 1;
    this.width = w;
    this.height = hgt;
    this.canvas.width = Math.round(w * this.dpr);
    this.canvas.height = Math.round(hgt * this.dpr);
    if (this.fitIds) {
      // Not moved since the last fit: fit the same objects to the new size.
      const ids = new Set(this.fitIds);
      this.fit(this.objects.filter((o) => ids.has(o.id)));
    }
    this.drawNow();
  }

  toScreen(x, y) {
    const v = this.view;
    return { x: this.width / 2 + (x - v.cx) * v.scale, y: this.height / 2 - (y - v.cy) * v.scale };
  }

  toWorld(sx, sy) {
    const v = this.view;
    return { x: v.cx + (sx - this.width / 2) / v.scale, y: v.cy - (sy - this.height / 2) / v.scale };
  }

  scaleLimits() {
    const span = this.extent ? Math.max(this.extent.w, this.extent.h, 1) : 1e12;
    const min = Math.min(this.width, this.height) / (span * 20);
    return { min: Math.min(min, MAX_SCALE), max: MAX_SCALE };
  }

  setScale(scale) {
    const lim = this.scaleLimits();
    this.view.scale = Math.min(lim.max, Math.max(lim.min, scale));
  }

  // Fits the view on these objects (or all of them), leaving a margin.
  fit(list) {
    const objs = (list && list.length ? list : this.objects).filter((o) => o.pos);
    const b = bounds(objs);
    if (!b) {
      return;
    }
    const all = this.extent || b;
    const minSpan = Math.max(Math.max(all.w, all.h) / 1e5, 20);
    const w = Math.max(b.w, minSpan);
    const hgt = Math.max(b.h, minSpan);
    this.view.cx = b.x + b.w / 2;
    this.view.cy = b.y + b.h / 2;
    this.setScale(Math.min((this.width * 0.8) / w, (this.height * 0.8) / hgt));
    this.changed();
    this.fitIds = objs.map((o) => o.id);
  }

  centerOn(x, y) {
    this.fitIds = null;
    this.view.cx = x;
    this.view.cy = y;
    this.changed();
  }

  // Zooms by factor keeping the point under (sx, sy) where it is.
  zoomAt(factor, sx = this.width / 2, sy = this.height / 2) {
    this.fitIds = null;
    const p = this.toWorld(sx, sy);
    this.setScale(this.view.scale * factor);
    this.view.cx = p.x - (sx - this.width / 2) / this.view.scale;
    this.view.cy = p.y + (sy - this.height / 2) / this.view.scale;
    this.changed();
  }

  panBy(dx, dy) {
    this.fitIds = null;
    this.view.cx -= dx / this.view.scale;
    this.view.cy += dy / this.view.scale;
    this.changed();
  }

  changed() {
    this.redraw();
    if (this.opts.onViewChange) {
      this.opts.onViewChange();
    }
  }

  // ---------------------------------------------------------- picking

  // The objects within the hit radius of a screen point, nearest first
  // (within 3 pixels: by HIT_RANK).
  hits(sx, sy, radius) {
    const out = [];
    for (const o of this.objects) {
      const p = this.toScreen(o.pos.x, o.pos.y);
      const d = Math.hypot(p.x - sx, p.y - sy);
      if (d <= radius) {
        out.push({ o, d });
      }
    }
    out.sort((a, b) => Math.round(a.d / 3) - Math.round(b.d / 3) ||
      (HIT_RANK[b.o.type_name] ?? 0) - (HIT_RANK[a.o.type_name] ?? 0) || a.o.id - b.o.id);
    return out.map((x) => x.o);
  }

  // Starts "pick on map": the next click calls cb(worldPoint, object or null).
  startPick(cb) {
    this.picking = cb;
    this.canvas.classList.add('picking');
  }

  stopPick() {
    this.picking = null;
    this.canvas.classList.remove('picking');
  }

  click(sx, sy, touch) {
    const found = this.hits(sx, sy, touch ? HIT_RADIUS_TOUCH : HIT_RADIUS);
    let target = found[0] || null;
    // Clicking again on a stack of objects goes through them in turn.
    const again = this.lastClick && Math.hypot(this.lastClick.x - sx, this.lastClick.y - sy) < 5;
    if (again && found.length > 1 && this.selected !== null) {
      const i = found.findIndex((o) => o.id === this.selected);
      if (i >= 0) {
        target = found[(i + 1) % found.length];
      }
    }
    this.lastClick = { x: sx, y: sy };
    if (this.picking) {
      const cb = this.picking;
      this.stopPick();
      const w = this.toWorld(sx, sy);
      cb({ x: Math.round(w.x), y: Math.round(w.y), z: 0 }, found[0] || null);
      return;
    }
    this.opts.onSelect(target ? target.id : null);
  }

  // ---------------------------------------------------------- input

  bindInput() {
    const c = this.canvas;
    const local = (e) => {
      const r = c.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    c.addEventListener('pointerdown', (e) => {
      c.setPointerCapture(e.pointerId);
      const p = local(e);
      this.pointers.set(e.pointerId, p);
      if (this.pointers.size === 1) {
        this.drag = { start: p, last: p, moved: false, touch: e.pointerType === 'touch' };
      } else if (this.pointers.size === 2) {
        const [a, b] = [...this.pointers.values()];
        this.drag = { pinch: Math.hypot(a.x - b.x, a.y - b.y), moved: true };
      }
    });
    c.addEventListener('pointermove', (e) => {
      const p = local(e);
      if (!this.pointers.has(e.pointerId)) {
        const top = this.hits(p.x, p.y, HIT_RADIUS)[0];
        const id = top ? top.id : null;
        if (id !== this.hover) {
          this.hover = id;
          c.classList.toggle('over-object', id !== null);
          this.redraw();
        }
        return;
      }
      this.pointers.set(e.pointerId, p);
      if (!this.drag) {
        return;
      }
      if (this.pointers.size >= 2 && this.drag.pinch) {
        const [a, b] = [...this.pointers.values()];
        const dist = Math.hypot(a.x - b.x, a.y - b.y);
        if (dist > 0 && this.drag.pinch > 0) {
          this.zoomAt(dist / this.drag.pinch, (a.x + b.x) / 2, (a.y + b.y) / 2);
        }
        this.drag.pinch = dist;
        return;
      }
      const d = this.drag;
      if (!d.moved && Math.hypot(p.x - d.start.x, p.y - d.start.y) > 4) {
        d.moved = true;
        c.classList.add('dragging');
      }
      if (d.moved && d.last) {
        this.panBy(p.x - d.last.x, p.y - d.last.y);
      }
      d.last = p;
    });
    const up = (e) => {
      if (!this.pointers.has(e.pointerId)) {
        return;
      }
      const p = local(e);
      this.pointers.delete(e.pointerId);
      const d = this.drag;
      if (this.pointers.size === 0) {
        this.drag = null;
        c.classList.remove('dragging');
        if (d && !d.moved && e.type === 'pointerup') {
          this.click(p.x, p.y, d.touch);
        }
      }
    };
    c.addEventListener('pointerup', up);
    c.addEventListener('pointercancel', up);
    c.addEventListener('pointerleave', () => {
      if (this.hover !== null && this.pointers.size === 0) {
        this.hover = null;
        this.redraw();
      }
    });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const p = local(e);
      const lines = e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? this.height : 1;
      this.zoomAt(Math.exp(-e.deltaY * lines * 0.0015), p.x, p.y);
    }, { passive: false });
    c.addEventListener('keydown', (e) => {
      const step = 60;
      const keys = {
        '+': () => this.zoomAt(1.5), '=': () => this.zoomAt(1.5), '-': () => this.zoomAt(1 / 1.5),
        ArrowLeft: () => this.panBy(step, 0), ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step), ArrowDown: () => this.panBy(0, -step),
      };
      if (keys[e.key]) {
        e.preventDefault();
        keys[e.key]();
      }
    });
  }

  // ---------------------------------------------------------- drawing

  redraw() {
    if (this.pending) {
      return;
    }
    this.pending = true;
    requestAnimationFrame(() => this.drawNow());
  }

  drawNow() {
    this.pending = false;
    const ctx = this.ctx;
    const w = this.width;
    const hgt = this.height;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = '#070b16';
    ctx.fillRect(0, 0, w, hgt);
    this.drawGrid();

    for (const line of this.lines) {
      this.drawLine(line);
    }

    const drawn = [];
    const labels = [];
    const stars = new Map();    // star system id -> its screen point
    const margin = 12;
    for (const o of this.objects) {
      const p = this.toScreen(o.pos.x, o.pos.y);
      if (p.x < -margin || p.y < -margin || p.x > w + margin || p.y > hgt + margin) {
        continue;
      }
      const inside = p.x >= 0 && p.y >= 0 && p.x <= w && p.y <= hgt;
      const style = this.opts.styleOf(o);
      if (o.type_name === 'Star System') {
        stars.set(o.id, p);
      } else if (o.type_name === 'Planet' && stars.has(o.parent) && o.id !== this.selected) {
        // Zoomed out, a planet sits on its star: it is folded into it,
        // shown as a ring in its owner's colour when someone owns it.
        const s = stars.get(o.parent);
        if (Math.hypot(p.x - s.x, p.y - s.y) < 6) {
          if (o.owner > 0) {
            this.drawRing(s, style.color);
          }
          if (inside) drawn.push(o.id);
          continue;
        }
      }
      this.drawMarker(o, p, style);
      if (inside) {
        drawn.push(o.id);
      }
      labels.push({ o, p, style });
    }
    this.drawn = drawn;
    this.drawLabels(labels);
    this.drawScale();
  }

  drawGrid() {
    const ctx = this.ctx;
    const scale = this.view.scale;
    const unit = 10 ** Math.ceil(Math.log10(90 / scale));
    const tl = this.toWorld(0, 0);
    const br = this.toWorld(this.width, this.height);
    ctx.strokeStyle = 'rgba(120, 150, 220, 0.08)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = Math.floor(tl.x / unit) * unit; x <= br.x; x += unit) {
      const sx = Math.round(this.toScreen(x, 0).x) + 0.5;
      ctx.moveTo(sx, 0);
      ctx.lineTo(sx, this.height);
    }
    for (let y = Math.floor(br.y / unit) * unit; y <= tl.y; y += unit) {
      const sy = Math.round(this.toScreen(0, y).y) + 0.5;
      ctx.moveTo(0, sy);
      ctx.lineTo(this.width, sy);
    }
    ctx.stroke();
  }

  drawLine(line) {
    const ctx = this.ctx;
    const a = this.toScreen(line.from.x, line.from.y);
    const b = this.toScreen(line.to.x, line.to.y);
    const len = Math.hypot(b.x - a.x, b.y - a.y);
    ctx.save();
    ctx.strokeStyle = line.color;
    ctx.fillStyle = line.color;
    ctx.globalAlpha = 0.85;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
    ctx.setLineDash([]);
    if (len > 12) {
      const ang = Math.atan2(b.y - a.y, b.x - a.x);
      ctx.beginPath();
      ctx.moveTo(b.x, b.y);
      ctx.lineTo(b.x - 9 * Math.cos(ang - 0.4), b.y - 9 * Math.sin(ang - 0.4));
      ctx.lineTo(b.x - 9 * Math.cos(ang + 0.4), b.y - 9 * Math.sin(ang + 0.4));
      ctx.closePath();
      ctx.fill();
    }
    ctx.beginPath();
    ctx.arc(b.x, b.y, 3, 0, Math.PI * 2);
    ctx.stroke();
    ctx.restore();
  }

  drawRing(p, color) {
    const ctx = this.ctx;
    ctx.beginPath();
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.arc(p.x, p.y, 7, 0, Math.PI * 2);
    ctx.stroke();
  }

  drawMarker(o, p, style) {
    const ctx = this.ctx;
    ctx.fillStyle = style.color;
    ctx.strokeStyle = style.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    switch (style.shape) {
      case 'star':
        ctx.globalAlpha = 0.25;
        ctx.arc(p.x, p.y, 8, 0, Math.PI * 2);
        ctx.fill();
        ctx.globalAlpha = 1;
        ctx.beginPath();
        ctx.arc(p.x, p.y, 3.5, 0, Math.PI * 2);
        ctx.fill();
        break;
      case 'planet':
        ctx.arc(p.x, p.y, 5, 0, Math.PI * 2);
        ctx.fill();
        ctx.strokeStyle = 'rgba(0, 0, 0, 0.5)';
        ctx.stroke();
        break;
      case 'fleet':
        ctx.moveTo(p.x, p.y - 7);
        ctx.lineTo(p.x + 6, p.y + 5);
        ctx.lineTo(p.x - 6, p.y + 5);
        ctx.closePath();
        ctx.fill();
        break;
      default:
        ctx.moveTo(p.x, p.y - 6);
        ctx.lineTo(p.x + 6, p.y);
        ctx.lineTo(p.x, p.y + 6);
        ctx.lineTo(p.x - 6, p.y);
        ctx.closePath();
        ctx.stroke();
    }
    if (o.id === this.selected || o.id === this.hover) {
      ctx.beginPath();
      ctx.strokeStyle = o.id === this.selected ? '#ffffff' : 'rgba(255, 255, 255, 0.5)';
      ctx.lineWidth = 2;
      ctx.arc(p.x, p.y, 11, 0, Math.PI * 2);
      ctx.stroke();
    }
  }

  // Names where they fit: the selected and hovered objects first, then
  // stars, then the rest; a name that would overlap one already placed
  // is left out (so names appear as the view zooms in).
  drawLabels(items) {
    const ctx = this.ctx;
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const rank = (it) => (it.o.id === this.selected ? -2 : it.o.id === this.hover ? -1
      : TYPE_RANK[it.o.type_name] ?? 3);
    items.sort((a, b) => rank(a) - rank(b));
    const placed = [];
    const markers = items.map((it) => ({ x: it.p.x - 6, y: it.p.y - 6, w: 12, h: 12, o: it.o }));
    for (const it of items) {
      const text = it.o.name || `#${it.o.id}`;
      const tw = ctx.measureText(text).width;
      const r = { x: it.p.x + 10, y: it.p.y - 8, w: tw + 4, h: 16 };
      if (r.x + r.w > this.width - 4 && it.p.x - 14 - tw > 0) {
        r.x = it.p.x - 12 - tw;       // no room on the right: on the left
      }
      const forced = rank(it) < 0;
      const blocked = placed.some((q) => overlap(q, r)) ||
        markers.some((m) => m.o !== it.o && overlap(m, r));
      if (blocked && !forced) {
        continue;
      }
      placed.push(r);
      ctx.fillStyle = 'rgba(7, 11, 22, 0.7)';
      ctx.fillRect(r.x - 2, r.y, r.w, r.h);
      ctx.fillStyle = forced ? '#ffffff' : it.style.label || '#c9d4ee';
      ctx.fillText(text, r.x, it.p.y);
    }
  }

  drawScale() {
    const ctx = this.ctx;
    const units = 120 / this.view.scale;
    const nice = 10 ** Math.floor(Math.log10(units));
    const step = [5, 2, 1].map((m) => m * nice).find((s) => s <= units) || nice;
    const px = step * this.view.scale;
    const x = 12;
    const y = this.height - 14;
    ctx.strokeStyle = '#9fb0d6';
    ctx.fillStyle = '#9fb0d6';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x, y - 4);
    ctx.lineTo(x, y);
    ctx.lineTo(x + px, y);
    ctx.lineTo(x + px, y - 4);
    ctx.stroke();
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'bottom';
    ctx.fillText(`${new Intl.NumberFormat('en', { notation: 'compact' }).format(step)} units`, x + 4, y - 3);
  }
}

function bounds(objs) {
  let minx = Infinity;
  let miny = Infinity;
  let maxx = -Infinity;
  let maxy = -Infinity;
  for (const o of objs) {
    if (!o.pos) continue;
    minx = Math.min(minx, o.pos.x);
    maxx = Math.max(maxx, o.pos.x);
    miny = Math.min(miny, o.pos.y);
    maxy = Math.max(maxy, o.pos.y);
  }
  if (minx === Infinity) {
    return null;
  }
  return { x: minx, y: miny, w: maxx - minx, h: maxy - miny };
}

function overlap(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}
