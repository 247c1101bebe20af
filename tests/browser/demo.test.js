// The demo page in real Chromium against a real `liveim serve`: an admin on
// a desktop and a viewer on a phone in one room see each other's chat in
// the list and as danmaku, count likes and who is online, and the admin
// mutes, deletes and kicks. The README's screenshots (docs/img/) are taken
// here, frozen so that they come out the same on every run; other
// screenshots go to artifacts/browser/.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { startLiveim } from './server.js';

const repo = resolve(import.meta.dirname, '../..');
const artifacts = join(repo, 'artifacts/browser');
const docsImg = join(repo, 'docs/img');
const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
const WAIT = { timeout: 30_000 }; // generous: other test suites may share the machine
let server;
let browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  mkdirSync(docsImg, { recursive: true });
  server = await startLiveim();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--font-render-hinting=none'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// cspViolations are what the pages' Content-Security-Policy blocked.
const cspViolations = [];
afterEach(() => assert.deepEqual(cspViolations.splice(0), [], 'the page broke its Content-Security-Policy'));

async function open(user, device, query = '') {
  const context = await browser.newContext({ ...device, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[${user}] page error:`, err));
  page.on('console', (m) => {
    if (m.type() !== 'log') console.error(`[${user}] console ${m.type()}: ${m.text()}`);
    if (m.text().includes('Content Security Policy')) cspViolations.push(`[${user}] ${m.text()}`);
  });
  const res = await page.goto(`${server.base}/?user=${user}${query}`);
  // The page runs under its policy: nothing of it may be blocked.
  assert.match(res.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  return page;
}

async function enter(user, device, { room, admin }) {
  const page = await open(user, device, `&room=${room}${admin ? '&admin=1' : ''}`);
  await page.click('#join');
  await page.waitForSelector('body[data-ready="1"]', WAIT);
  return page;
}

async function say(page, text) {
  await page.fill('#msg', text);
  await page.click('#send');
}

const line = (page, text) => page.locator('#chat .line', { hasText: text });
const danmaku = (page, text) => page.locator('#danmaku .dm', { hasText: text });

// seen waits until text is in the page's chat list and flying over its stage.
async function seen(page, text) {
  await line(page, text).waitFor(WAIT);
  await danmaku(page, text).first().waitFor({ state: 'attached', ...WAIT });
}

// refused sends text from page and waits for the error toast with code.
async function refused(page, text, code) {
  await page.evaluate(() => { document.getElementById('toast').hidden = true; });
  await say(page, text);
  await waitText(page, '#toast', code);
}

function waitText(page, selector, want) {
  return page.waitForFunction(([s, w]) => {
    const e = document.querySelector(s);
    return e && !e.hidden && e.textContent.includes(w);
  }, [selector, want], WAIT);
}

function waitHidden(page, selector) {
  return page.waitForFunction((s) => document.querySelector(s).hidden, selector, WAIT);
}

// hold pauses every danmaku in flight where it is (freeze places them).
function hold(page) {
  return page.evaluate(() => {
    for (const dm of document.querySelectorAll('#danmaku .dm')) for (const a of dm.getAnimations()) a.pause();
  });
}

// resume lets every animation run on (the finite ones to their end).
function resume(page) {
  return page.evaluate(() => {
    for (const a of document.getAnimations()) {
      if (a.effect.getComputedTiming().endTime === Infinity) a.play();
      else a.finish();
    }
  });
}

// clearStage ends every danmaku and heart in flight, so that what flies
// next starts from the top lane.
async function clearStage(page) {
  await page.evaluate(() => {
    for (const a of document.getAnimations()) if (a.effect.target.closest('#danmaku, #hearts')) a.finish();
  });
  await page.waitForFunction(() => !document.querySelector('#danmaku .dm, #hearts .heart'), null, WAIT);
}

// freeze stops a page as screenshots should show it on every run: no
// hover or focus, the clock and toasts hidden, no hearts, CSS animations
// at their start and each danmaku paused part way along its flight by its
// order on the stage.
async function freeze(page) {
  await page.mouse.move(0, 0); // no hover
  await page.evaluate(() => {
    // A constructed sheet, which the page's policy allows (a <style> it
    // would block).
    const hide = new CSSStyleSheet();
    hide.replaceSync('.clock { display: none !important; } .toast { visibility: hidden !important; }');
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, hide];
    document.activeElement?.blur(); // no focus ring or caret
    document.getElementById('hearts').replaceChildren();
    for (const a of document.getAnimations()) {
      a.pause();
      a.currentTime = 0;
    }
    const along = [0.48, 0.3, 0.62, 0.4, 0.54, 0.24];
    document.querySelectorAll('#danmaku .dm').forEach((dm, i) => {
      for (const a of dm.getAnimations()) a.currentTime = a.effect.getComputedTiming().duration * along[i % along.length];
    });
  });
}

async function shoot(page, file) {
  await page.screenshot({ path: file, caret: 'hide' });
}

// shootForDocs writes a committed screenshot only when the picture
// changed: from run to run Chromium may shade a few anti-aliased pixels
// one step apart, which must not rewrite the file.
async function shootForDocs(page, file) {
  const png = await page.screenshot({ caret: 'hide' });
  if (existsSync(file) && await samePicture(readFileSync(file), png)) return;
  writeFileSync(file, png);
}

// samePicture reports whether two PNGs have the same size and no channel
// of any pixel more than 2 apart (decoded by Chromium).
async function samePicture(a, b) {
  const page = await browser.newPage();
  try {
    return await page.evaluate(async ([a, b]) => {
      const pixels = async (b64) => {
        const img = await createImageBitmap(await (await fetch(`data:image/png;base64,${b64}`)).blob());
        const ctx = new OffscreenCanvas(img.width, img.height).getContext('2d');
        ctx.drawImage(img, 0, 0);
        return ctx.getImageData(0, 0, img.width, img.height);
      };
      const [pa, pb] = await Promise.all([pixels(a), pixels(b)]);
      if (pa.width !== pb.width || pa.height !== pb.height) return false;
      for (let i = 0; i < pa.data.length; i++) if (Math.abs(pa.data[i] - pb.data[i]) > 2) return false;
      return true;
    }, [a.toString('base64'), b.toString('base64')]);
  } finally {
    await page.close();
  }
}

test('the login form keeps the admin checkbox beside its label, on desktop and phone', async () => {
  for (const [name, device] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const page = await open('carol', device);
    const box = await page.locator('#admin').boundingBox();
    const label = await page.locator('.check b').boundingBox();
    const user = await page.locator('#user').boundingBox();
    assert.ok(box.width <= 24 && box.height <= 24, `${name}: the checkbox is ${box.width}×${box.height}`);
    assert.ok(box.x + box.width < label.x && label.x - (box.x + box.width) < 24, `${name}: the label does not follow the checkbox`);
    assert.ok(Math.abs((box.y + box.height / 2) - (label.y + label.height / 2)) < 12, `${name}: checkbox and label are not on one line`);
    assert.ok(Math.abs(box.x - user.x) < 24, `${name}: the checkbox is not aligned with the fields`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the screen`);
    await shoot(page, join(artifacts, `login-${name}.png`));
    await page.context().close();
  }
});

test('a live room on desktop and phone: chat, danmaku, likes, online count, mute, delete, kick', async () => {
  const room = 'friday-live';
  const alice = await enter('alice', DESKTOP, { room, admin: true }); // creates and owns the room
  const bob = await enter('bob', PHONE, { room, admin: false });

  // memberchange is aggregated (about once a second), so the count follows.
  await waitText(alice, '#online', '2');
  await waitText(bob, '#online', '2');
  assert.equal(await alice.locator('#tab-admin').isVisible(), true, 'the owner gets the moderation panel');
  assert.equal(await bob.locator('#tab-admin').isVisible(), false, 'a viewer gets none');

  // Layout: on the desktop the stage is beside the chat; on the phone it is
  // above it, and nothing is wider than the screen.
  const [stageD, sideD] = [await alice.locator('#stage').boundingBox(), await alice.locator('.side').boundingBox()];
  assert.ok(stageD.x + stageD.width <= sideD.x && stageD.width > 700, `desktop: stage ${JSON.stringify(stageD)}, side ${JSON.stringify(sideD)}`);
  const [stageP, chatP, composerP] = [await bob.locator('#stage').boundingBox(), await bob.locator('#chat').boundingBox(), await bob.locator('#composer').boundingBox()];
  assert.ok(Math.round(stageP.width) === 390 && stageP.y + stageP.height <= chatP.y && composerP.y + composerP.height <= 844,
    `phone: stage ${JSON.stringify(stageP)}, chat ${JSON.stringify(chatP)}, composer ${JSON.stringify(composerP)}`);
  assert.ok(await bob.evaluate(() => document.documentElement.scrollWidth <= innerWidth), 'phone: no sideways scrolling');

  // Chat shows in the list and as danmaku on both pages.
  await say(alice, 'Welcome everyone, the show starts now');
  await seen(bob, 'Welcome everyone, the show starts now');
  await seen(alice, 'Welcome everyone, the show starts now');
  await say(bob, 'hi from bob');
  await seen(alice, 'hi from bob');
  await seen(bob, 'hi from bob');

  // Likes: clicks within half a second go out as one message with
  // repeatCount; both pages show the room's running total.
  for (let i = 0; i < 3; i++) await bob.click('#like');
  await waitText(alice, '#likes', '3');
  await waitText(bob, '#likes', '3');
  for (let i = 0; i < 2; i++) await alice.click('#like');
  await waitText(bob, '#likes', '5');
  await waitText(alice, '#likes', '5');

  // The README's screenshots: a few lines in flight, frozen.
  await clearStage(alice);
  await clearStage(bob);
  const talk = [[alice, 'next song in five minutes'], [bob, 'the sound is great tonight'],
    [bob, 'play the one about the sea'], [alice, 'coming right up, bob']];
  for (const [page, text] of talk) {
    await say(page, text);
    for (const p of [alice, bob]) {
      await seen(p, text);
      await hold(p); // a busy machine must not let a line fly off before the shot
    }
  }
  await freeze(alice);
  await freeze(bob);
  await shootForDocs(alice, join(docsImg, 'demo-desktop.png'));
  await shootForDocs(bob, join(docsImg, 'demo-phone.png'));
  await resume(alice);
  await resume(bob);

  // The admin mutes bob from his line, for 10 minutes (the server API's
  // timed mute, through /dev/mute): bob is told, and his next message is
  // refused with 442.
  await line(alice, 'hi from bob').hover();
  await line(alice, 'hi from bob').locator('button.mod').click();
  await alice.locator('#mod-sheet[open]').waitFor(WAIT);
  assert.equal(await alice.inputValue('#mod-mute-for'), '600');
  await shoot(alice, join(artifacts, 'alice-moderation-sheet.png'));
  await alice.click('#mod-mute');
  await waitText(bob, '#notice', 'You are muted');
  await refused(bob, 'can anyone hear me', '442');
  await shoot(bob, join(artifacts, 'bob-muted.png'));
  assert.equal(await line(alice, 'can anyone hear me').count(), 0);

  // The moderation panel lists him as muted; unmuted, he chats again.
  await alice.click('#tab-admin');
  await alice.locator('#muted li[data-user="bob"]').waitFor(WAIT);
  await alice.locator('#members li[data-user="bob"]').waitFor(WAIT);
  await shoot(alice, join(artifacts, 'alice-moderation-panel.png'));
  await alice.click('#muted li[data-user="bob"] button.unmute');
  await waitHidden(bob, '#notice');
  await say(bob, 'thanks for unmuting me');
  await alice.click('#tab-chat');
  await seen(alice, 'thanks for unmuting me');

  // Muted until unmuted (the client API's muteUser) from the member list,
  // and unmuted from the same sheet.
  await alice.click('#tab-admin');
  await alice.click('#members li[data-user="bob"] button.moderate');
  await alice.selectOption('#mod-mute-for', '0');
  await alice.click('#mod-mute');
  await waitText(bob, '#notice', 'You are muted');
  await alice.click('#members li[data-user="bob"] button.moderate');
  await alice.click('#mod-unmute');
  await waitHidden(bob, '#notice');

  // Mute all, and back.
  await alice.click('#mute-all');
  await alice.locator('#mute-all[aria-checked="true"]').waitFor(WAIT);
  await waitText(bob, '#notice', 'muted the room');
  await refused(bob, 'still here?', '442');
  await alice.click('#mute-all');
  await alice.locator('#mute-all[aria-checked="false"]').waitFor(WAIT);
  await waitHidden(bob, '#notice');
  await alice.click('#tab-chat');

  // The admin deletes her first message: it disappears on bob's page too.
  await line(alice, 'Welcome everyone').hover();
  await line(alice, 'Welcome everyone').locator('button.mod').click();
  await alice.click('#mod-delete');
  await line(bob, 'Welcome everyone').waitFor({ state: 'detached', ...WAIT });
  await line(alice, 'Welcome everyone').waitFor({ state: 'detached', ...WAIT });
  assert.equal(await line(bob, 'hi from bob').count(), 1);

  // The admin kicks bob with a 10-minute ban (the server API's kick,
  // through /dev/kick): bob's page shows the exit, the room counts one,
  // and bob cannot come back in.
  await alice.click('#tab-admin');
  await alice.click('#members li[data-user="bob"] button.moderate');
  await alice.selectOption('#mod-ban-for', '600');
  await alice.click('#mod-kick');
  await waitText(bob, '#exit', 'You were removed from the room');
  await shoot(bob, join(artifacts, 'bob-kicked.png'));
  await waitText(alice, '#online', '1');
  await bob.click('#exit-back');
  await bob.locator('#login').waitFor(WAIT);
  await bob.click('#join');
  await waitText(bob, '#login-error', '403');
  await shoot(bob, join(artifacts, 'bob-banned.png'));
});
