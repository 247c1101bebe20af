// Rendering of the live-room demo (app.js drives it): chat lines, danmaku
// lanes, hearts, avatars, toasts. Plain DOM, no framework; published as
// window.LiveRoomUI.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // A user's colour, the same on every page: a hue from the user ID.
  function hue(userId) {
    let h = 0;
    for (const c of userId) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  function paintAvatar(node, userId) {
    node.textContent = (userId[0] || '?').toUpperCase();
    node.style.setProperty('--hue', hue(userId));
  }

  function avatar(userId) {
    const a = el('span', 'avatar');
    paintAvatar(a, userId);
    return a;
  }

  // chatLine renders a chat message; badge is '', 'host' or 'admin'.
  function chatLine(msg, { badge, mine, onModerate }) {
    const li = el('li', mine ? 'line mine' : 'line');
    li.dataset.id = msg.messageId;
    li.dataset.sender = msg.sender.userId;
    const body = el('span', 'body');
    const who = el('span', 'who', msg.sender.userId);
    who.style.setProperty('--hue', hue(msg.sender.userId));
    body.append(who);
    if (badge) body.append(el('span', `badge ${badge}`, badge));
    body.append(el('span', 'text', msg.data));
    li.append(avatar(msg.sender.userId), body);
    if (onModerate) {
      const mod = el('button', 'mod');
      mod.type = 'button';
      mod.title = 'Moderate';
      mod.setAttribute('aria-label', `Moderate ${msg.sender.userId}'s message`);
      mod.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="5" cy="12" r="2"/><circle cx="12" cy="12" r="2"/><circle cx="19" cy="12" r="2"/></svg>';
      mod.onclick = () => onModerate(msg);
      li.append(mod);
    }
    return li;
  }

  function systemLine(text) {
    return el('li', 'system', text);
  }

  // Chat keeps the list scrolled to the newest line unless its reader
  // scrolled up, and holds at most max lines.
  class Chat {
    constructor(list, max) { this.list = list; this.max = max; }
    has(messageId) { return !!this.list.querySelector(`.line[data-id="${CSS.escape(messageId)}"]`); }
    append(li) {
      const l = this.list;
      const atEnd = l.scrollHeight - l.scrollTop - l.clientHeight < 40;
      l.append(li);
      while (l.children.length > this.max) l.firstElementChild.remove();
      if (atEnd) l.scrollTop = l.scrollHeight;
    }
    remove(messageId) {
      const li = this.list.querySelector(`.line[data-id="${CSS.escape(messageId)}"]`);
      if (li) li.remove();
    }
  }

  // Danmaku flies messages across the stage in lanes, right to left at one
  // speed. Lanes are taken in turn from the top (from the top lane again
  // once the stage is empty), skipping a lane whose last message has not
  // yet cleared the right edge; with every lane busy, the one whose last
  // message is furthest along.
  class Danmaku {
    constructor(layer) { this.layer = layer; this.last = []; this.next = 0; this.enabled = true; }
    fly(msg, mine) {
      const W = this.layer.clientWidth;
      if (!this.enabled || W === 0) return;
      const laneH = W < 600 ? 26 : 34; // .dm's line height and a gap
      const lanes = Math.max(1, Math.floor(this.layer.clientHeight / laneH));
      if (!this.layer.querySelector('.dm')) this.next = 0;
      const dm = el('span', mine ? 'dm mine' : 'dm', msg.data);
      dm.dataset.id = msg.messageId;
      this.layer.append(dm);
      const right = this.layer.getBoundingClientRect().right;
      const room = (l) => { // space behind the lane's last message; Infinity when none
        const last = this.last[l];
        return last && last.isConnected ? right - last.getBoundingClientRect().right : Infinity;
      };
      let lane = -1;
      for (let i = 0; i < lanes && lane < 0; i++) {
        const l = (this.next + i) % lanes;
        if (room(l) >= 32) lane = l;
      }
      if (lane < 0) {
        lane = 0;
        for (let l = 1; l < lanes; l++) if (room(l) > room(lane)) lane = l;
      }
      this.next = (lane + 1) % lanes;
      this.last[lane] = dm;
      dm.style.top = `${lane * laneH}px`;
      const w = dm.offsetWidth;
      const speed = Math.max(80, W / 6); // px per second
      const dist = W + w;
      const anim = dm.animate([{ transform: 'translateX(0)' }, { transform: `translateX(${-dist}px)` }],
        { duration: (dist / speed) * 1000, easing: 'linear' });
      anim.onfinish = () => dm.remove();
    }
    remove(messageId) {
      for (const dm of this.layer.querySelectorAll(`.dm[data-id="${CSS.escape(messageId)}"]`)) dm.remove();
    }
    setEnabled(on) {
      this.enabled = on;
      if (!on) this.layer.replaceChildren();
    }
  }

  // Hearts rise from the like button's corner of the stage.
  const HEART = '<svg viewBox="0 0 24 24"><path d="M12 21s-7.5-4.6-9.6-9.3C.9 8.3 3 4.5 6.6 4.5c2.1 0 3.6 1.2 4.4 2.6.8-1.4 2.3-2.6 4.4-2.6 3.6 0 5.7 3.8 4.2 7.2C19.5 16.4 12 21 12 21z"/></svg>';
  const DRIFT = [-18, 10, -4, 22, -26, 6];
  const COLOURS = [350, 330, 20, 300, 5, 340];
  let hearts = 0;
  function heart(layer) {
    if (layer.childElementCount > 24) return;
    const i = hearts++ % DRIFT.length;
    const h = el('span', 'heart');
    h.innerHTML = HEART;
    h.style.setProperty('--hue', COLOURS[i]);
    layer.append(h);
    const anim = h.animate([
      { transform: 'translate(0, 0) scale(.6)', opacity: 0 },
      { transform: `translate(${DRIFT[i] / 2}px, -40px) scale(1)`, opacity: 1, offset: 0.15 },
      { transform: `translate(${DRIFT[i]}px, -200px) scale(1.1)`, opacity: 0 },
    ], { duration: 2200, easing: 'ease-out' });
    anim.onfinish = () => h.remove();
  }

  let toastTimer = 0;
  function toast(text, kind) {
    const t = $('toast');
    t.textContent = text;
    t.className = `toast ${kind || ''}`;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  function formatCount(n) {
    if (n < 10000) return String(n);
    return new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 }).format(n);
  }

  function formatElapsed(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const two = (n) => String(n).padStart(2, '0');
    const h = Math.floor(s / 3600);
    return h > 0 ? `${h}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}` : `${two(Math.floor(s / 60))}:${two(s % 60)}`;
  }

  function formatDuration(seconds) {
    if (!seconds) return '';
    if (seconds % 3600 === 0) return seconds === 3600 ? '1 hour' : `${seconds / 3600} hours`;
    return seconds === 60 ? '1 minute' : `${Math.round(seconds / 60)} minutes`;
  }

  window.LiveRoomUI = { el, avatar, paintAvatar, chatLine, systemLine, Chat, Danmaku, heart, toast, formatCount, formatElapsed, formatDuration };
})();
