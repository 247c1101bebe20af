// The hosted SDK page's sample calls, run AS WRITTEN (only the import, the
// placeholders' real IDs and credentials, and the page's two syntax slips
// fixed) against the browser bundle dist/liveim-im.iife.js, loaded as a
// page would load it: a script that reads `window` and `WebSocket` (here
// the `ws` package, a real socket) and finds neither `process` nor `wx`.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type * as LiveIMNamespace from '../src/index.js';
import { server, token, uid } from './helpers.js';

type Namespace = typeof LiveIMNamespace;
interface PageWindow {
  AliVCInteraction: Namespace;
  LiveIM: Namespace;
}

/** loadBundle runs the IIFE bundle with a page-like global scope and returns its window. */
function loadBundle(): PageWindow {
  const code = readFileSync(server.iife, 'utf8');
  const window = {} as PageWindow;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const run = new Function('window', 'WebSocket', 'process', 'wx', 'require', 'module', 'exports', code) as (...a: unknown[]) => void;
  run(window, WebSocket, undefined, undefined, undefined, undefined, undefined);
  return window;
}

describe('the hosted SDK page samples', () => {
  it('publish the same namespace as window.AliVCInteraction and window.LiveIM', () => {
    const window = loadBundle();
    expect(window.AliVCInteraction).toBe(window.LiveIM);
    const { ImEngine, ImLogLevel, ImMessageLevel, ImSortType, ImErrorCode } = window.AliVCInteraction;
    expect(typeof ImEngine.createEngine).toBe('function');
    expect(ImMessageLevel).toEqual({ NORMAL: 0, HIGH: 1 });
    expect(ImSortType).toEqual({ ASC: 0, DESC: 1 });
    expect(ImLogLevel.ERROR).toBeGreaterThan(ImLogLevel.DBUG);
    expect(ImErrorCode.SDK_ALREADY_INITIALIZED).toBe(1001);
  });

  it('run as written', async () => {
    const window = loadBundle();
    const logs: string[] = [];
    const console = { log: (...args: unknown[]) => logs.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')) };

    // The app's own server side: issues credentials (here: the real CLI).
    const me = uid('abc');
    const peerId = uid('peer');
    const mine = token(me, { role: 'admin' });
    const APP_ID = mine.appId;
    const APP_SIGN = mine.appSign;
    const getLoginAuth = async () => token(me, { role: 'admin' }).auth;

    // Another viewer in the room (same bundle, an independent engine).
    const peer = new window.AliVCInteraction.ImEngine();
    await peer.init({ appId: APP_ID, appSign: APP_SIGN, logLevel: window.AliVCInteraction.ImLogLevel.NONE });
    await peer.login({ user: { userId: peerId, userExtension: '{}' }, userAuth: token(peerId).auth });
    const peerGot: string[] = [];
    peer.getMessageManager().on('recvc2cmessage', (msg) => peerGot.push(`c2c:${msg.data}`));
    peer.getMessageManager().on('recvgroupmessage', (msg) => peerGot.push(`group:${msg.data}`));
    peer.getMessageManager().on('deletegroupmessage', (msgId) => peerGot.push(`delete:${msgId}`));

    // ---- 初始化 (the import line is the only change) ----
    const { ImEngine, ImLogLevel, ImMessageLevel } = window.AliVCInteraction;

    // 获取引擎单例
    const engine = ImEngine.createEngine();

    try {
      await engine.init({
        deviceId: "xxxx",    // 设备ID,可选传入
        appId: APP_ID,     // 开通应用后可以在控制台上拷贝
        appSign: APP_SIGN, // 开通应用后可以在控制台上拷贝
        logLevel: ImLogLevel.ERROR,  // 日志级别,调试时使用 ImLogLevel.DBUG
        // 指定引入的 wasm 的地址
        locateFile: (url: string) => {
          if (url.endsWith('.wasm')) {
            // 如果您 wasm 文件不是存放在 lib 下,您需要更新为对应的路径
            // 比如 uni-app 工程里的路径可能是 /static/mp-weixin/alivc-im.wasm.br
            return '/lib/alivc-im.wasm.br';
          }
          return url;
        },
      });

      // 初始化成功,监听事件
      engine.on("connecting", () => {
        console.log("connecting");
      });

      engine.on("connectfailed", (err) => {
        console.log(`connect failed: ${err.message}`);
      });

      engine.on("connectsuccess", () => {
        console.log("connect success");
      });

      engine.on("disconnect", (code: number) => {
        console.log(`disconnect: ${code}`);
      });

      engine.on("tokenexpired", async (cb) => {
        // 这里需要更新为获取新的登录信息的代码
        const auth = await getLoginAuth();
        cb(null, {
          timestamp: auth.timestamp, // 服务端返回timestamp值
          nonce: auth.nonce,      // 服务端返回nonce值
          role: 'admin',       // 是否为admin角色,如果不需要可以设置为空
          token: auth.token         // 服务端返回token值
        });
      });
    } catch (error) {
      // init 错误码含义
      // 1001:重复初始化、1002:创建底层引擎失败、-1:底层重复初始化、-2:初始化配置信息有误
      const e = error as { code: number; msg: string };
      console.log(`Init Fail: code:${e.code}, message: ${e.msg}`);
    }

    // ---- 登录 ----
    await engine.login({
      user: {
        userId: me,       // 当前app登录的用户ID
        userExtension: '{}', // 用户扩展信息,可以是头像、昵称等封装为JSON字符串
      },
      userAuth: {
        timestamp: mine.auth.timestamp, // 服务端返回timestamp值
        nonce: mine.auth.nonce,      // 服务端返回nonce值
        role: 'admin',       // 是否为admin角色,如果不需要可以设置为空
        token: mine.auth.token         // 服务端返回token值
      },
    });

    // ---- 群组操作 ----
    // 必须确保已经初始化,否则会返回空值
    const groupManager = engine.getGroupManager();

    // 在适当的时机(例如进入房间后,且完成登录后)添加群组操作事件监听器
    groupManager.on('exit', (groupId: string, reason: number) => {
      // 退出群组
      console.log(`group ${groupId} close, reason: ${reason}`);
    })
    groupManager.on('memberchange', (groupId: string, memberCount: number, joinUsers: LiveIMNamespace.ImUser[], leaveUsers: LiveIMNamespace.ImUser[]) => {
      // 有人进入或离开群组
      console.log(`group ${groupId} member change, memberCount: ${memberCount}, joinUsers: ${joinUsers.map(u => u.userId).join(',')}, leaveUsers: ${leaveUsers.map(u => u.userId).join('')}`);
    })
    groupManager.on('mutechange', (groupId: string, status) => {
      // 群组的禁言状态发生了变化
      console.log(`group ${groupId} mute change`);
      void status;
    })
    groupManager.on('infochange', (groupId: string, info) => {
      // 有人离开了群组
      console.log(`group ${groupId} info change`);
      void info;
    })

    // 创建群组
    const created = await groupManager.createGroup({
      groupId: '',       // 群组id,为空时,系统创建新群组后会返回唯一id
      groupName: 'xxx',  // 群组昵称,一定要设置,否则会失败
      groupMeta: 'xxx'   // 群组扩展信息,如果有多个字段可以考虑封装为json字符串
    });
    const groupId = created.groupId;
    expect(created.alreadyExist).toBe(false);

    // 进入群组
    await groupManager.joinGroup(groupId);
    await peer.getGroupManager().joinGroup(groupId);
    // memberchange is aggregated by the server (at most one a second).
    await expect.poll(() => logs.some((l) => l.startsWith(`group ${groupId} member change, memberCount: 2`)), { timeout: 5000 }).toBe(true);

    // 查询群组信息
    const groupInfo = await groupManager.queryGroup(groupId);
    expect(groupInfo).toMatchObject({ groupId, groupName: 'xxx', groupMeta: 'xxx', creator: me });

    // 修改群组信息
    await groupManager.modifyGroup({
      groupId: groupId,  // 群组ID
      forceUpdateAdmins: true, // 是否强制修改群管理员
      admins: [peerId], // 群管理员ID 列表,需要清空时传空数组且 forceUpdateAdmins 传 true
      forceUpdateGroupMeta: true, // 是否强制修改群扩展信息
      groupMeta: 'xxx' // 群信息扩展信息Meta,需要清空时传空字符串且 forceUpdateGroupMeta 传 true
    });

    // 查询群组最近成员列表
    const recentGroupUserInfo = groupManager.listRecentGroupUser(groupId);
    expect((await recentGroupUserInfo).total).toBe(2);

    // 查询群组全部成员
    const { ImSortType } = window.AliVCInteraction;
    const groupUserInfo = groupManager.listGroupUser({
      groupId: groupId,    // 群组ID
      nextpagetoken: 12, // 默认表示第一页,遍历时服务端会返回,客户端获取下一页时,应带上
      pageSize: 10,      // 最大不超过50
      sortType: ImSortType.ASC // 排序方式,ASC-先加入优先,DESC-后加入优先
    });
    expect((await groupUserInfo).userList.map((u) => u.userId)).toEqual([me, peerId]);

    // 对群组进行禁言 / 取消禁言
    await groupManager.muteAll(groupId);
    await groupManager.cancelMuteAll(groupId);

    // 对群组的用户进行禁言 / 取消禁言
    await groupManager.muteUser({
      groupId: groupId,    // 群组id
      userList: [peerId]  // 需要禁言的用户id列表
    });
    await groupManager.cancelMuteUser({
      groupId: groupId,    // 群组ID
      userList: [peerId]  // 需要取消禁言的用户ID列表
    });

    // 查询群组内被禁言的用户列表
    const muteUsersInfo = await groupManager.listMuteUsers(groupId);
    expect(muteUsersInfo).toEqual({ muteAll: false, muteUserList: [], whiteUserList: [] });

    // ---- 消息操作 ----
    // 必须确保已经初始化,否则会返回空值
    const messageManager = await engine.getMessageManager();

    // 收到其他用户发来的单聊消息
    messageManager.on("recvc2cmessage", (msg) => {
      console.log('recvc2cmessage', msg);
    });

    // 收到群聊消息
    messageManager.on("recvgroupmessage", (msg, channelId) => {
      console.log('recvgroupmessage', msg);
      void channelId;
    });

    // 群消息删除
    messageManager.on('deletegroupmessage', (msgId, groupId) => {
      console.log(`group ${groupId} delete message ${msgId}`)
    });

    // 单发消息
    try {
      const messageId = await messageManager.sendC2cMessage({
        receiverId: peerId,     // 接收者id
        data: 'xxx',           // 发送消息内容,如果是结构化可考虑使用JSON字符串
        type: 88888,           // 自定义消息类型,需大于10000
        skipAudit: false,      // 可选(默认 false),跳过安全审核
        level: ImMessageLevel.NORMAL // 可选(默认 NORMAL), 消息分级,需要高可靠时,使用 ImMessageLevel.HIGH
      });
      console.log('send success, messageId: ', messageId);
    } catch (error) {
      // error.code 为 424 时为对方未在线,建议待对方上线后再重发
      console.log('send fail', error);
    }

    // 群发消息
    // 发群组消息前请确保已加入群组
    try {
      const messageId = await messageManager.sendGroupMessage({
        groupId: groupId,       // 群组id
        data: 'xxx',          // 发送消息内容,如果是结构化可考虑使用json字符串
        type: 88888,          // 自定义消息类型,需大于10000
        skipAudit: false,     // 可选(默认 false),跳过安全审核
        skipMuteCheck: false, // 可选(默认 false),跳过禁言检测
        level: ImMessageLevel.NORMAL, // 可选(默认 NORMAL), 消息分级
        noStorage: true,     // 可选(默认 false)true:表示该消息不需要存储
        repeatCount: 1        // 可选(默认 1)本消息重复数量
      });
      console.log('send success, messageId: ', messageId);
    } catch (error) {
      // error.code 为 425 时为未加入群组
      console.log('send fail', error);
    }

    // A stored message to delete (the sample's "xxx" message ID made real).
    const stored = await messageManager.sendGroupMessage({ groupId, data: 'stored', type: 88888 });

    // 删除/撤回群消息
    await messageManager.deleteMessage({
      groupId: groupId,       // 群组id
      messageId: stored,     // 需要删除的消息 id
    });

    // 查询最近群发消息列表
    const messagesInfo = await messageManager.listRecentMessage({
      groupId: groupId,     // 群组ID
    })
    expect(messagesInfo.messageList).toEqual([]); // one not stored, one deleted

    // 查询全部群发消息列表
    const messageList = await messageManager.listMessage({
      groupId: groupId,    // 群组ID
      type: 88888,       // 自定义消息类型,需大于10000
      nextPageToken: 12, // 不传时表示第一页
      pageSize: 10,      // 默认10条,最大30条
      sortType: ImSortType.ASC // 排序方式,默认为时间递增
    });
    expect(messageList).toMatchObject({ groupId, hasMore: false, messageList: [] });

    // 查询历史消息
    const historyList = messageManager.listHistoryMessage({
      groupId: groupId,    // 群组ID
      type: 88888,       // 消息类型,自定义消息类型需大于10000
      nextPageToken: 12, // 可选,不传时表示第一页
      pageSize: 10,      // 默认10条,最大30条
      sortType: ImSortType.ASC, // 排序方式,默认为时间递增
      beginTime: 0,      // 可选(默认 0),开始时间,秒级时间戳
      endTime: 0         // 可选(默认 0),结束时间,秒级时间戳
    });
    expect((await historyList).groupId).toBe(groupId);

    // 离开群组
    await groupManager.leaveGroup(groupId);

    // 关闭群组 (on a room of its own: the sample closes 'xxx')
    const other = await groupManager.createGroup({ groupId: uid('xxx'), groupName: 'xxx', groupMeta: 'xxx' });
    await groupManager.joinGroup(other.groupId);
    await groupManager.closeGroup(other.groupId);
    await expect.poll(() => logs.some((l) => l === `group ${other.groupId} close, reason: 1`), { timeout: 5000 }).toBe(true);

    // 登出
    await engine.logout();

    // 反初始化
    engine.unInit()

    // What the sample's handlers saw.
    expect(logs).toContain('connecting');
    expect(logs).toContain('connect success');
    expect(logs.some((l) => l.startsWith(`group ${groupId} member change, memberCount: 2`))).toBe(true);
    expect(logs).toContain(`group ${groupId} mute change`);
    expect(logs).toContain(`group ${groupId} info change`);
    expect(logs.some((l) => l.startsWith('send success, messageId: '))).toBe(true);
    expect(logs.filter((l) => l.startsWith('send fail'))).toEqual([]);
    expect(logs.some((l) => l.startsWith('recvgroupmessage') && l.includes('"data":"xxx"'))).toBe(true);
    expect(logs).toContain(`group ${groupId} delete message ${stored}`);
    expect(logs).toContain('disconnect: 1');
    expect(logs.some((l) => l.startsWith('Init Fail'))).toBe(false);
    expect(peerGot).toEqual(expect.arrayContaining(['c2c:xxx', 'group:xxx', `delete:${stored}`]));

    // init twice through the singleton is 1001; after unInit it works again.
    await engine.init({ appId: APP_ID, appSign: APP_SIGN, logLevel: ImLogLevel.NONE });
    await expect(engine.init({ appId: APP_ID, appSign: APP_SIGN })).rejects.toMatchObject({ code: 1001 });
    engine.unInit();
    peer.unInit();
  });
});
