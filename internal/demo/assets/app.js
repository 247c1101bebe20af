// The live-room demo: plain JavaScript on the SDK's browser bundle, which
// publishes the same API as the hosted SDK under window.AliVCInteraction.
(function () {
  'use strict';
  const { ImEngine, ImLogLevel, ImMessageLevel } = window.AliVCInteraction;
  const CHAT = 10001; // stored, shown in the list and as danmaku
  const LIKE = 10002; // not stored; repeatCount carries a batch of likes

  const $ = (id) => document.getElementById(id);
  const state = { user: '', room: '', admin: false, groupManager: null, messageManager: null, pendingLikes: 0, likeTimer: 0 };

  function status(text) { $('status').textContent = text || ''; }
  function notice(text) { $('notice').textContent = text || ''; }
  function fail(err) { status(`${err.code}: ${err.msg}`); }

  function addChat(msg) {
    if ($('chat').querySelector(`[data-id="${msg.messageId}"]`)) return;
    const li = document.createElement('li');
    li.dataset.id = msg.messageId;
    li.dataset.sender = msg.sender.userId;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = msg.sender.userId;
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = msg.data;
    li.append(who, text);
    if (state.admin) {
      const del = document.createElement('button');
      del.className = 'del';
      del.textContent = 'delete';
      del.onclick = () => state.messageManager.deleteMessage({ groupId: state.room, messageId: msg.messageId }).catch(fail);
      li.append(del);
      if (msg.sender.userId !== state.user) {
        const mute = document.createElement('button');
        mute.className = 'mute';
        mute.textContent = 'mute';
        mute.onclick = () => state.groupManager.muteUser({ groupId: state.room, userList: [msg.sender.userId] }).catch(fail);
        li.append(mute);
      }
    }
    $('chat').append(li);
    $('chat').scrollTop = $('chat').scrollHeight;
  }

  function flyDanmaku(msg) {
    const dm = document.createElement('span');
    dm.className = 'dm';
    dm.textContent = msg.data;
    dm.style.top = `${10 + Math.random() * 70}%`;
    dm.addEventListener('animationend', () => dm.remove());
    $('danmaku').append(dm);
  }

  function heart() {
    const h = document.createElement('span');
    h.className = 'heart';
    h.textContent = '❤';
    h.style.right = `${20 + Math.random() * 60}px`;
    h.addEventListener('animationend', () => h.remove());
    $('hearts').append(h);
  }

  function showMute(status) {
    const mutedByName = (status.muteUserList || []).includes(state.user);
    const white = (status.whiteUserList || []).includes(state.user);
    const muted = !state.admin && (mutedByName || (status.muteAll && !white));
    $('mute-all').textContent = status.muteAll ? 'Unmute all' : 'Mute all';
    $('mute-all').dataset.on = status.muteAll ? '1' : '';
    notice(muted ? 'You are muted in this room' : status.muteAll ? 'The room is muted' : '');
  }

  function sendLikes() {
    const n = state.pendingLikes;
    state.pendingLikes = 0;
    state.likeTimer = 0;
    if (n > 0) {
      state.messageManager.sendGroupMessage({
        groupId: state.room, type: LIKE, data: '❤', repeatCount: n, noStorage: true, level: ImMessageLevel.NORMAL,
      }).catch(fail);
    }
  }

  async function enter() {
    state.user = $('user').value.trim();
    state.room = $('room').value.trim();
    state.admin = $('admin').checked;
    status('');
    const res = await fetch(`/dev/token?user=${encodeURIComponent(state.user)}${state.admin ? '&role=admin' : ''}`);
    if (!res.ok) { status(`token: ${res.status} ${await res.text()}`); return; }
    const tok = await res.json();

    const engine = ImEngine.createEngine();
    await engine.init({ appId: tok.app_id, appSign: tok.app_sign, logLevel: ImLogLevel.ERROR });
    engine.on('disconnect', (code) => notice(`disconnected (${code})`));
    engine.on('reconnectsuccess', () => notice(''));
    await engine.login({
      user: { userId: state.user, userExtension: JSON.stringify({ nick: state.user }) },
      userAuth: { timestamp: tok.auth.timestamp, nonce: tok.auth.nonce, role: tok.auth.role, token: tok.app_token },
    });
    const gm = engine.getGroupManager();
    const mm = engine.getMessageManager();
    state.groupManager = gm;
    state.messageManager = mm;

    gm.on('memberchange', (groupId, memberCount) => { if (groupId === state.room) $('online').textContent = memberCount; });
    gm.on('mutechange', (groupId, st) => { if (groupId === state.room) showMute(st); });
    gm.on('exit', (groupId, reason) => { if (groupId === state.room) notice(reason === 1 ? 'The room was closed' : 'You were removed from the room'); });
    mm.on('recvgroupmessage', (msg, groupId) => {
      if (groupId !== state.room) return;
      if (msg.type === CHAT) { addChat(msg); flyDanmaku(msg); }
      if (msg.type === LIKE) { $('likes').textContent = msg.totalMsgs; for (let i = 0; i < Math.min(msg.repeatCount, 8); i++) heart(); }
    });
    mm.on('deletegroupmessage', (msgId, groupId) => {
      const li = $('chat').querySelector(`[data-id="${msgId}"]`);
      if (groupId === state.room && li) li.remove();
    });

    if (state.admin) {
      await gm.createGroup({ groupId: state.room, groupName: state.room, groupMeta: '' });
    }
    const info = await gm.joinGroup(state.room);
    $('online').textContent = info.statistics.onlineCount;
    $('likes').textContent = (info.statistics.msgAmount && info.statistics.msgAmount[LIKE]) || 0;
    showMute(info.muteStatus);
    const recent = await mm.listRecentMessage({ groupId: state.room });
    for (const m of recent.messageList) if (m.type === CHAT) addChat(m);

    $('me').textContent = state.admin ? `${state.user} (admin)` : state.user;
    $('me').hidden = false;
    $('room-name').textContent = state.room;
    $('admin-panel').hidden = !state.admin;
    $('login').hidden = true;
    $('roomview').hidden = false;
    document.body.dataset.ready = '1';
  }

  $('join').onclick = () => enter().catch((err) => status(err && err.code !== undefined ? `${err.code}: ${err.msg}` : String(err)));
  $('composer').onsubmit = (ev) => {
    ev.preventDefault();
    const text = $('msg').value.trim();
    if (!text) return;
    state.messageManager.sendGroupMessage({ groupId: state.room, type: CHAT, data: text }).then(() => { $('msg').value = ''; status(''); }, fail);
  };
  $('like').onclick = () => {
    state.pendingLikes++;
    heart();
    if (!state.likeTimer) state.likeTimer = setTimeout(sendLikes, 400);
  };
  $('mute-all').onclick = () => {
    const on = !$('mute-all').dataset.on;
    (on ? state.groupManager.muteAll(state.room) : state.groupManager.cancelMuteAll(state.room)).catch(fail);
  };
  $('close-room').onclick = () => state.groupManager.closeGroup(state.room).catch(fail);
  const params = new URLSearchParams(location.search);
  if (params.get('user')) $('user').value = params.get('user');
  if (params.get('room')) $('room').value = params.get('room');
  if (params.get('admin') === '1') $('admin').checked = true;
})();
