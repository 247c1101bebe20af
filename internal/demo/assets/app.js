// The live-room demo: plain JavaScript on the SDK's browser bundle, which
// publishes the same API as the hosted SDK under window.AliVCInteraction.
// room-ui.js renders; this file logs in, follows the room's events and
// runs the admin panel. Kicks and timed mutes are the app backend's
// (the server API's): in development /dev/kick and /dev/mute do them.
(function () {
  'use strict';
  const { ImEngine, ImLogLevel, ImMessageLevel } = window.AliVCInteraction;
  const UI = window.LiveRoomUI;
  const CHAT = 10001; // stored: the chat list, the danmaku and the history
  const LIKE = 10002; // not stored; one send carries a batch of likes in repeatCount
  const LIKE_BATCH_MS = 500; // clicks within this window go out as one message
  const MAX_REPEAT = 1000; // the server's cap on repeatCount (its default)

  const $ = (id) => document.getElementById(id);
  const state = {
    user: '', room: '', tok: null, engine: null, gm: null, mm: null, wired: false, inRoom: false,
    creator: '', admins: [], createTime: 0, likes: 0, pendingLikes: 0, likeTimer: 0,
    mute: { muteAll: false, muteUserList: [], whiteUserList: [] }, connNotice: '', target: null,
  };
  const chat = new UI.Chat($('chat'), 200);
  const danmaku = new UI.Danmaku($('danmaku'));

  // Errors: the catalogue's code first, then what it means to a viewer.
  const MEANING = {
    401: 'your login expired', 412: 'slow down a little', 413: 'that message is too long',
    425: 'you are not in the room', 440: 'this room does not exist yet: an admin opens it',
    441: 'this room is closed', 442: 'you are muted in this room', 451: 'refused by moderation',
    503: 'the server is busy: try again',
  };
  function errText(err) {
    if (err && err.code !== undefined) return `${err.code} · ${MEANING[err.code] || err.msg || err.message}`;
    return String((err && err.message) || err);
  }
  const fail = (err) => {
    console.warn('liveim demo:', errText(err));
    UI.toast(errText(err), 'error');
  };

  const isManager = (userId) => userId === state.creator || state.admins.includes(userId);
  const badgeOf = (userId) => (userId === state.creator ? 'host' : state.admins.includes(userId) ? 'admin' : '');

  async function fetchToken(user, admin) {
    const res = await fetch(`/dev/token?user=${encodeURIComponent(user)}${admin ? '&role=admin' : ''}`, { cache: 'no-store' });
    if (!res.ok) throw new Error(`login: ${res.status} ${(await res.text()).trim()}`);
    return res.json();
  }
  const userAuth = (tok) => ({ timestamp: tok.auth.timestamp, nonce: tok.auth.nonce, role: tok.auth.role, token: tok.app_token });

  // backend POSTs a moderation request to the demo's backend half, which
  // checks our login and calls the server API.
  async function backend(path, userId, seconds) {
    const res = await fetch(path, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth: state.tok.auth, app_token: state.tok.app_token, group_id: state.room, user_id: userId, seconds }),
    });
    if (res.ok) return;
    let e = { code: res.status, msg: res.statusText };
    try { e = await res.json(); } catch { /* not JSON: keep the HTTP status */ }
    throw e;
  }

  // ---- the room's state on the page ----

  function setOnline(n) { $('online').textContent = UI.formatCount(n); }

  function setLikes(n) {
    if (n < state.likes) return; // a late message carries an older running total
    state.likes = n;
    $('likes').dataset.count = n;
    $('likes').textContent = UI.formatCount(n);
  }

  function renderNotice() {
    const me = state.user;
    const mutedByName = state.mute.muteUserList.includes(me);
    const white = state.mute.whiteUserList.includes(me);
    let text = state.connNotice;
    if (!text && !isManager(me)) {
      if (mutedByName) text = 'You are muted in this room.';
      else if (state.mute.muteAll && !white) text = 'The host muted the room: only the host and admins can chat.';
    }
    $('notice').textContent = text;
    $('notice').hidden = !text;
  }

  function applyMute(st) {
    state.mute = { muteAll: !!st.muteAll, muteUserList: st.muteUserList || [], whiteUserList: st.whiteUserList || [] };
    renderNotice();
    $('mute-all').setAttribute('aria-checked', String(state.mute.muteAll));
    const list = $('muted');
    list.replaceChildren(...state.mute.muteUserList.map((u) => personRow(u, [['Unmute', 'unmute', () => unmute(u)]])));
    $('muted-count').textContent = state.mute.muteUserList.length;
    $('muted-empty').hidden = state.mute.muteUserList.length > 0;
    if (state.target) renderSheet();
  }

  function applyRoles() {
    const manager = isManager(state.user);
    document.body.classList.toggle('manager', manager);
    $('tab-admin').hidden = !manager;
    if (!manager && !$('pane-admin').hidden) showPane('pane-chat');
    $('me').replaceChildren(UI.avatar(state.user), UI.el('span', 'name', state.user));
    if (badgeOf(state.user)) $('me').append(UI.el('span', `badge ${badgeOf(state.user)}`, badgeOf(state.user)));
    renderNotice();
  }

  function applyInfo(info) {
    state.creator = info.creator || '';
    state.admins = info.admins || [];
    state.createTime = info.createTime || Date.now();
    setOnline(info.statistics.onlineCount);
    setLikes((info.statistics.msgAmount && info.statistics.msgAmount[LIKE]) || 0);
    applyMute(info.muteStatus || {});
    const host = state.creator || 'liveim';
    UI.paintAvatar($('host-avatar'), host);
    $('host-name').textContent = host;
    $('room-name').textContent = info.groupName || state.room;
    $('room-title').textContent = info.groupName || state.room;
    applyRoles();
  }

  function tickClock() { $('clock').textContent = UI.formatElapsed(Date.now() - state.createTime); }

  function addChat(msg) {
    if (chat.has(msg.messageId)) return false;
    const mod = isManager(state.user) && (msg.sender.userId === state.user || !isManager(msg.sender.userId));
    chat.append(UI.chatLine(msg, { badge: badgeOf(msg.sender.userId), mine: msg.sender.userId === state.user, onModerate: mod ? openSheet : null }));
    return true;
  }

  function announceJoins(users, count) {
    const names = users.map((u) => u.userId).filter((u) => u !== state.user);
    if (names.length === 0) return;
    const others = Math.max(count, users.length) - users.length;
    let who = names.slice(0, 3).join(', ');
    if (names.length > 3 || others > 0) who += ` and ${names.length - Math.min(names.length, 3) + others} more`;
    chat.append(UI.systemLine(`${who} joined the room`));
  }

  // ---- admin panel ----

  let membersTimer = 0;
  function refreshMembersSoon() { // only while the panel shows: memberchange comes every second in a busy room
    if (!isManager(state.user) || $('pane-admin').hidden || membersTimer) return;
    membersTimer = setTimeout(refreshMembers, 300);
  }
  async function refreshMembers() {
    membersTimer = 0;
    try {
      const res = await state.gm.listRecentGroupUser(state.room);
      $('member-count').textContent = res.total;
      $('members').replaceChildren(...res.userList.map((u) => {
        const mine = u.userId === state.user;
        const actions = mine || isManager(u.userId) ? [] : [['Moderate', 'moderate', () => openSheet(null, u.userId)]];
        return personRow(u.userId, actions);
      }));
    } catch (err) { fail(err); }
  }

  function personRow(userId, actions) {
    const li = UI.el('li');
    li.dataset.user = userId;
    const name = UI.el('span', 'name', userId);
    li.append(UI.avatar(userId), name);
    const badge = userId === state.user ? 'you' : badgeOf(userId);
    if (badge) name.append(UI.el('span', `badge ${badge}`, badge));
    for (const [label, cls, onclick] of actions) {
      const b = UI.el('button', cls, label);
      b.type = 'button';
      b.onclick = onclick;
      li.append(b);
    }
    return li;
  }

  // The moderation sheet acts on one user, and on one of its messages when
  // opened from the chat.
  function openSheet(msg, userId) {
    state.target = { userId: msg ? msg.sender.userId : userId, msg };
    renderSheet();
    if (!$('mod-sheet').open) $('mod-sheet').showModal();
  }
  function renderSheet() {
    const { userId, msg } = state.target;
    UI.paintAvatar($('mod-avatar'), userId);
    $('mod-user').textContent = userId;
    const muted = state.mute.muteUserList.includes(userId);
    $('mod-role').textContent = userId === state.user ? 'you' : muted ? 'muted' : badgeOf(userId) || 'viewer';
    $('mod-quote').hidden = !msg;
    $('mod-quote').textContent = msg ? msg.data : '';
    $('mod-delete').hidden = !msg;
    $('mod-actions').hidden = userId === state.user || isManager(userId);
    $('mod-mute').hidden = muted;
    $('mod-mute-for').hidden = muted;
    $('mod-unmute').hidden = !muted;
  }
  function closeSheet() { if ($('mod-sheet').open) $('mod-sheet').close(); state.target = null; }

  // changeMute waits for a mute change, then shows the room's mute state
  // at once rather than when its mutechange event comes.
  async function changeMute(change) {
    await change;
    applyMute(await state.gm.listMuteUsers(state.room));
  }
  async function mute(userId, seconds) {
    // The client API mutes until cancelled; a mute for a time is the server API's.
    await changeMute(seconds > 0 ? backend('/dev/mute', userId, seconds) : state.gm.muteUser({ groupId: state.room, userList: [userId] }));
    UI.toast(seconds > 0 ? `${userId} is muted for ${UI.formatDuration(seconds)}` : `${userId} is muted`);
  }
  async function unmute(userId) {
    try {
      await changeMute(state.gm.cancelMuteUser({ groupId: state.room, userList: [userId] }));
      UI.toast(`${userId} may chat again`);
    } catch (err) { fail(err); }
  }
  const sheetAction = (fn) => async () => {
    if (!state.target) return;
    const { userId, msg } = state.target;
    try { await fn(userId, msg); closeSheet(); } catch (err) { fail(err); }
  };
  $('mod-delete').onclick = sheetAction((_, msg) => state.mm.deleteMessage({ groupId: state.room, messageId: msg.messageId }));
  $('mod-mute').onclick = sheetAction((userId) => mute(userId, Number($('mod-mute-for').value)));
  $('mod-unmute').onclick = sheetAction((userId) => unmute(userId));
  $('mod-kick').onclick = sheetAction(async (userId) => {
    const ban = Number($('mod-ban-for').value);
    await backend('/dev/kick', userId, ban);
    UI.toast(ban > 0 ? `${userId} was removed and banned for ${UI.formatDuration(ban)}` : `${userId} was removed from the room`);
  });
  $('mod-sheet').addEventListener('close', () => { state.target = null; });

  $('mute-all').onclick = () => {
    const on = !state.mute.muteAll;
    changeMute(on ? state.gm.muteAll(state.room) : state.gm.cancelMuteAll(state.room)).catch(fail);
  };
  let closeArmed = 0;
  $('close-room').onclick = () => {
    if (!closeArmed) { // a second click within 4 s closes: no blocking confirm()
      $('close-room').textContent = 'Click again to end the live';
      closeArmed = setTimeout(() => { closeArmed = 0; $('close-room').textContent = 'End the live and close the room'; }, 4000);
      return;
    }
    state.gm.closeGroup(state.room).catch(fail);
  };

  function showPane(id) {
    for (const tab of document.querySelectorAll('.tabs [role=tab]')) {
      const on = tab.dataset.pane === id;
      tab.setAttribute('aria-selected', String(on));
      $(tab.dataset.pane).hidden = !on;
    }
    if (id === 'pane-admin') refreshMembers();
  }
  for (const tab of document.querySelectorAll('.tabs [role=tab]')) tab.onclick = () => showPane(tab.dataset.pane);

  // ---- leaving ----

  function showExit(title, text) {
    state.inRoom = false;
    clearInterval(state.clockTimer);
    closeSheet();
    $('exit-title').textContent = title;
    $('exit-text').textContent = text;
    $('exit').hidden = false;
    $('msg').disabled = $('send').disabled = $('like').disabled = true;
  }
  function backToLobby() {
    const q = new URLSearchParams({ user: state.user, room: state.room });
    location.assign(`${location.pathname}?${q}`);
  }
  $('exit-back').onclick = backToLobby;
  $('leave').onclick = async () => {
    try { await state.gm.leaveGroup(state.room); await state.engine.logout(); } catch { /* leaving anyway */ }
    backToLobby();
  };

  // ---- wiring the SDK ----

  function wire() {
    const { engine, gm, mm } = state;
    engine.on('connecting', () => { if (state.inRoom) { state.connNotice = 'Connection lost: reconnecting…'; renderNotice(); } });
    engine.on('reconnectsuccess', () => {
      state.connNotice = '';
      renderNotice();
      gm.queryGroup(state.room).then(applyInfo, () => {});
    });
    engine.on('disconnect', (code) => {
      if (code === 2) showExit('You were signed out', 'The service ended your session.');
      else if (code === 4) showExit('Signed in elsewhere', `${state.user} joined from another page or device.`);
    });
    engine.on('tokenexpired', (cb) => {
      fetchToken(state.user, state.tok.auth.role === 'admin').then((tok) => { state.tok = tok; cb(null, userAuth(tok)); }, (err) => cb(err));
    });
    gm.on('memberchange', (groupId, count, joins, leaves, joinCount) => {
      if (groupId !== state.room) return;
      setOnline(count);
      announceJoins(joins || [], joinCount || 0);
      refreshMembersSoon();
    });
    gm.on('mutechange', (groupId, st) => { if (groupId === state.room) applyMute(st); });
    gm.on('infochange', (groupId, info) => { if (groupId === state.room) { state.admins = info.adminList || []; applyRoles(); } });
    gm.on('exit', (groupId, reason) => {
      if (groupId !== state.room) return;
      if (reason === 2) showExit('You were removed from the room', `A moderator removed you from ${state.room}.`);
      else showExit('The live has ended', `The host closed ${state.room}. Thanks for watching!`);
    });
    mm.on('recvgroupmessage', (msg, groupId) => {
      if (groupId !== state.room) return;
      const mine = msg.sender.userId === state.user;
      if (msg.type === CHAT && addChat(msg)) danmaku.fly(msg, mine);
      if (msg.type === LIKE) {
        setLikes(msg.totalMsgs);
        if (!mine) for (let i = 0; i < Math.min(msg.repeatCount, 6); i++) setTimeout(() => UI.heart($('hearts')), i * 120);
      }
    });
    mm.on('deletegroupmessage', (msgId, groupId) => {
      if (groupId !== state.room) return;
      chat.remove(msgId);
      danmaku.remove(msgId);
    });
  }

  async function enter() {
    state.user = $('user').value.trim();
    state.room = $('room').value.trim();
    const admin = $('admin').checked;
    state.tok = await fetchToken(state.user, admin);
    if (!state.engine) {
      state.engine = ImEngine.createEngine();
      await state.engine.init({ appId: state.tok.app_id, appSign: state.tok.app_sign, logLevel: ImLogLevel.ERROR });
    }
    await state.engine.login({ user: { userId: state.user, userExtension: JSON.stringify({ nick: state.user }) }, userAuth: userAuth(state.tok) });
    try {
      state.gm = state.engine.getGroupManager();
      state.mm = state.engine.getMessageManager();
      if (!state.wired) { wire(); state.wired = true; }
      if (admin) await state.gm.createGroup({ groupId: state.room, groupName: state.room, groupMeta: '' });
      applyInfo(await state.gm.joinGroup(state.room));
      state.inRoom = true;
      const recent = await state.mm.listRecentMessage({ groupId: state.room });
      const lines = recent.messageList.filter((m) => m.type === CHAT).sort((a, b) => a.timestamp - b.timestamp || a.seqnum - b.seqnum);
      for (const m of lines) addChat(m);
      chat.append(UI.systemLine(`Welcome to ${state.room}! Be kind in the chat.`));
    } catch (err) {
      await state.engine.logout().catch(() => {});
      throw err;
    }
    tickClock();
    state.clockTimer = setInterval(tickClock, 1000);
    $('login').hidden = true;
    $('roomview').hidden = false;
    $('room-title').hidden = $('me').hidden = $('leave').hidden = false;
    $('chat').scrollTop = $('chat').scrollHeight;
    document.title = `${state.room} · liveim`;
    document.body.dataset.ready = '1';
  }

  $('login-form').onsubmit = (ev) => {
    ev.preventDefault();
    $('login-error').textContent = '';
    $('join').disabled = true;
    enter().catch((err) => { $('login-error').textContent = errText(err); }).finally(() => { $('join').disabled = false; });
  };

  $('composer').onsubmit = (ev) => {
    ev.preventDefault();
    const text = $('msg').value.trim();
    if (!text) return;
    state.mm.sendGroupMessage({ groupId: state.room, type: CHAT, data: text, level: ImMessageLevel.NORMAL })
      .then(() => { if ($('msg').value.trim() === text) $('msg').value = ''; }, fail);
  };

  // Likes: every click shows a heart at once; the clicks of a short window
  // go out as ONE message with repeatCount N (the hosted SDK's pattern), and
  // the count shown is the room's running total the server sends back.
  function sendLikes() {
    const n = Math.min(state.pendingLikes, MAX_REPEAT);
    state.pendingLikes -= n;
    state.likeTimer = state.pendingLikes > 0 ? setTimeout(sendLikes, LIKE_BATCH_MS) : 0;
    state.mm.sendGroupMessage({ groupId: state.room, type: LIKE, data: 'like', repeatCount: n, noStorage: true, level: ImMessageLevel.NORMAL })
      .catch(fail);
  }
  $('like').onclick = () => {
    state.pendingLikes++;
    UI.heart($('hearts'));
    if (!state.likeTimer) state.likeTimer = setTimeout(sendLikes, LIKE_BATCH_MS);
  };

  $('dm-toggle').onclick = () => {
    const on = $('dm-toggle').getAttribute('aria-pressed') !== 'true';
    $('dm-toggle').setAttribute('aria-pressed', String(on));
    danmaku.setEnabled(on);
  };

  const params = new URLSearchParams(location.search);
  if (params.get('user')) $('user').value = params.get('user');
  if (params.get('room')) $('room').value = params.get('room');
  if (params.get('admin') === '1') $('admin').checked = true;
  if (!$('user').value) $('user').focus();
})();
