// Two pages in one room on the demo page, in real Chromium: they see each
// other's messages and likes, and an admin's mute and delete show on the
// other page. Screenshots go to artifacts/browser/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { startLiveim } from './server.js';

const artifacts = resolve(import.meta.dirname, '../../artifacts/browser');
let server;
let browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  server = await startLiveim();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function enter(user, admin) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
  page.on('pageerror', (err) => console.error(`[${user}] page error:`, err));
  await page.goto(`${server.base}/?user=${user}&room=demo-room${admin ? '&admin=1' : ''}`);
  await page.click('#join');
  await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
  return page;
}

async function say(page, text) {
  await page.fill('#msg', text);
  await page.click('#send');
}

function line(page, text) {
  return page.locator('#chat li', { hasText: text });
}

test('two pages chat, like, mute and delete in one room', async () => {
  const alice = await enter('alice', true); // admin: creates the room
  const bob = await enter('bob', false);

  await say(alice, 'hello from alice');
  await line(bob, 'hello from alice').waitFor({ timeout: 10_000 });
  await say(bob, 'hi from bob');
  await line(alice, 'hi from bob').waitFor({ timeout: 10_000 });
  // memberchange is aggregated (one per second), so the count follows.
  await alice.waitForFunction(() => document.getElementById('online').textContent === '2', null, { timeout: 10_000 });

  // Three clicks are batched into one message with repeatCount 3.
  for (let i = 0; i < 3; i++) await bob.click('#like');
  await alice.waitForFunction(() => document.getElementById('likes').textContent === '3', null, { timeout: 10_000 });
  await bob.waitForFunction(() => document.getElementById('likes').textContent === '3', null, { timeout: 10_000 });

  await alice.screenshot({ path: join(artifacts, 'alice-chat.png') });
  await bob.screenshot({ path: join(artifacts, 'bob-chat.png') });

  // The admin mutes bob from his line: bob is told, and his next message
  // is refused with 442.
  await line(alice, 'hi from bob').locator('button.mute').click();
  await bob.waitForFunction(() => document.getElementById('notice').textContent.includes('muted'), null, { timeout: 10_000 });
  await say(bob, 'can anyone hear me');
  await bob.waitForFunction(() => document.getElementById('status').textContent.startsWith('442'), null, { timeout: 10_000 });
  assert.equal(await line(alice, 'can anyone hear me').count(), 0);

  // The admin deletes her message: it disappears on bob's page.
  await line(alice, 'hello from alice').locator('button.del').click();
  await line(bob, 'hello from alice').waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal(await line(bob, 'hi from bob').count(), 1);

  await alice.screenshot({ path: join(artifacts, 'alice-moderated.png') });
  await bob.screenshot({ path: join(artifacts, 'bob-moderated.png') });
});
