// Starts a real `liveim serve` for the browser tests: builds the binary,
// runs it on free loopback ports with a temp data dir, and waits until it
// answers.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export async function startLiveim() {
  const dir = mkdtempSync(join(tmpdir(), 'liveim-browser-'));
  const bin = join(dir, 'liveim');
  execFileSync('go', ['build', '-o', bin, './cmd/liveim'], { cwd: repo, stdio: 'inherit' });
  const port = await freePort();
  const natsPort = await freePort();
  const proc = spawn(bin, ['serve', '--data', join(dir, 'data'), '--addr', `127.0.0.1:${port}`,
    '--nats-listen', `127.0.0.1:${natsPort}`, '--http-addr', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('liveim serve did not become healthy');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
