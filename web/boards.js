// Message boards: the list with unread counts (the number of messages
// seen on each board is kept in localStorage), reading one board and
// posting to it.

import { api } from './api.js';
import { h, clear, refText } from './format.js';

const $ = (id) => document.getElementById(id);

export class Boards {
  // ctx: { names, storagePrefix(): string, onUnread(total), onSessionLost(err) }
  constructor(ctx) {
    this.ctx = ctx;
    this.boards = [];
    this.openId = null;
    this.el = {
      list: $('boards'), view: $('board-view'), title: $('board-title'), messages: $('board-messages'),
      form: $('post-form'), subject: $('post-subject'), body: $('post-body'), post: $('post-btn'),
      error: $('post-error'),
    };
    this.el.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.post();
    });
  }

  reset() {
    this.boards = [];
    this.openId = null;
    clear(this.el.list);
    clear(this.el.messages);
    this.el.view.hidden = true;
    this.ctx.onUnread(0);
  }

  // ------------------------------------------------------------ seen counts

  seenKey(id) {
    return `${this.ctx.storagePrefix()}:board:${id}:seen`;
  }

  seen(id) {
    try {
      return Number(localStorage.getItem(this.seenKey(id))) || 0;
    } catch {
      return 0;
    }
  }

  setSeen(id, n) {
    try {
      localStorage.setItem(this.seenKey(id), String(n));
    } catch {
      // storage may be off (private windows): counts then last the visit
    }
  }

  unread(b) {
    return Math.max(0, (b.messages || 0) - this.seen(b.id));
  }

  // ------------------------------------------------------------ lists

  async refresh() {
    try {
      this.boards = await api('GET', 'api/boards');
    } catch (err) {
      this.ctx.onSessionLost(err);
      return;
    }
    for (const b of this.boards) {
      // Fewer messages than seen (some were removed): start from here.
      if (this.seen(b.id) > b.messages) {
        this.setSeen(b.id, b.messages);
      }
    }
    this.render();
    if (this.openId !== null) {
      await this.loadMessages(this.openId);
    }
  }

  render() {
    const list = clear(this.el.list);
    let total = 0;
    for (const b of this.boards) {
      const n = this.unread(b);
      total += n;
      list.append(h('li', { class: `board${b.id === this.openId ? ' open' : ''}`, dataset: { board: b.id } },
        h('button', { type: 'button', id: `board-${b.id}`, class: 'board-btn', onclick: () => this.open(b.id) },
          h('span', { class: 'board-name' }, b.name),
          h('span', { class: 'board-count' }, `${b.messages} message${b.messages === 1 ? '' : 's'}`),
          n > 0 && h('span', { class: 'badge unread', id: `board-unread-${b.id}` }, String(n))),
        b.description && h('p', { class: 'hint' }, b.description)));
    }
    if (!this.boards.length) {
      list.append(h('li', { class: 'hint' }, 'No boards.'));
    }
    this.ctx.onUnread(total);
  }

  async open(id) {
    this.openId = this.openId === id ? null : id;
    this.el.view.hidden = this.openId === null;
    this.render();
    if (this.openId !== null) {
      const b = this.boards.find((x) => x.id === id);
      this.el.title.textContent = b ? b.name : `Board ${id}`;
      await this.loadMessages(id);
    }
  }

  async loadMessages(id) {
    let msgs;
    try {
      msgs = await api('GET', `api/boards/${id}/messages`);
    } catch (err) {
      this.ctx.onSessionLost(err);
      this.showError(err);
      return;
    }
    if (this.openId !== id) {
      return;
    }
    const names = this.ctx.names;
    const list = clear(this.el.messages);
    // Newest first.
    for (const m of [...msgs].reverse()) {
      const refs = (m.references || []).filter((r) => r.type >= 0)
        .map((r) => h('span', { class: 'chip' }, refText(r.type, r.id, names)));
      // A battle's log (reference -1000, docs/battles.md): opened with this
      // page's session.
      for (const r of (m.references || []).filter((x) => x.type === -1000)) {
        refs.push(h('a', { class: 'chip battle-log', href: `/battles/${r.id}.xml`,
          target: '_blank', rel: 'noopener' }, `Battle log ${r.id}`));
      }
      list.append(h('li', { class: 'message', dataset: { slot: m.slot } },
        h('div', { class: 'message-head' },
          h('strong', { class: 'message-subject' }, m.subject || '(no subject)'),
          h('span', { class: 'meta' }, `turn ${m.turn}`)),
        h('p', { class: 'message-body' }, m.body),
        refs.length > 0 && h('div', { class: 'refs' }, refs)));
    }
    if (!msgs.length) {
      list.append(h('li', { class: 'hint' }, 'No messages yet.'));
    }
    const b = this.boards.find((x) => x.id === id);
    if (b) {
      b.messages = Math.max(b.messages, msgs.length);
      this.setSeen(id, b.messages);
      this.render();
    }
  }

  showError(err) {
    this.el.error.hidden = !err;
    this.el.error.textContent = err ? (err.describe ? err.describe() : err.message) : '';
  }

  async post() {
    const id = this.openId;
    if (id === null) {
      return;
    }
    this.showError(null);
    this.el.post.disabled = true;
    try {
      await api('POST', `api/boards/${id}/messages`, {
        subject: this.el.subject.value, body: this.el.body.value,
      });
      this.el.subject.value = '';
      this.el.body.value = '';
      await this.refresh();
    } catch (err) {
      this.ctx.onSessionLost(err);
      this.showError(err);
    } finally {
      this.el.post.disabled = false;
    }
  }

  // The event stream's "message": a new message on one of our boards.
  onMessage(data) {
    const b = this.boards.find((x) => x.id === data.board);
    if (b) {
      b.messages = Math.max(b.messages + 1, (data.slot ?? -1) + 1);
      this.render();
    }
    this.refresh();
  }
}
