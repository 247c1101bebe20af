/**
 * Global setup of the test run: builds the real liveim binary from the
 * repository (go build, cwd = repo root; or takes $LIVEIM_BIN), starts `liveim serve` on free
 * loopback ports with a temporary data dir, waits for /healthz, builds the
 * browser bundle, and hands all that to the tests through `inject`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

export interface LiveimServer {
  /** The liveim binary. */
  bin: string;
  /** Its data dir (for `liveim token --data`). */
  data: string;
  /** ws://127.0.0.1:PORT/ws */
  wsUrl: string;
  /** http://127.0.0.1:PORT */
  httpUrl: string;
  /** The browser IIFE bundle built for this run. */
  iife: string;
  /** The run's temporary directory (removed at the end). */
  tmp: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    liveim: LiveimServer;
  }
}

const sdkRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const repoRoot = resolve(sdkRoot, '../..');

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

async function waitHealthy(url: string, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`liveim serve exited with ${proc.exitCode}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`liveim serve not healthy at ${url} within ${timeoutMs} ms`);
}

/** RunningLiveim is a started `liveim serve` and how to stop it. */
export interface RunningLiveim {
  bin: string;
  data: string;
  wsUrl: string;
  httpUrl: string;
  stop(): Promise<void>;
}

/** buildLiveim builds the repository's binary into dir (or returns $LIVEIM_BIN). */
export function buildLiveim(dir: string): string {
  // LIVEIM_BIN runs a prebuilt binary instead of building the repository's.
  const prebuilt = process.env.LIVEIM_BIN ?? '';
  if (prebuilt !== '') return prebuilt;
  const bin = join(dir, 'liveim');
  execFileSync('go', ['build', '-o', bin, './cmd/liveim'], { cwd: repoRoot, stdio: 'inherit' });
  return bin;
}

/** startLiveim starts `liveim serve` with a fresh data dir under dir, and extra flags, and waits until it is healthy. */
export async function startLiveim(bin: string, dir: string, extra: string[] = []): Promise<RunningLiveim> {
  const data = mkdtempSync(join(dir, 'data-'));
  const [port, natsPort] = [await freePort(), await freePort()];
  const addr = `127.0.0.1:${port}`;
  const proc = spawn(
    bin,
    [
      'serve',
      '--data', data,
      '--addr', addr,
      '--nats-listen', `127.0.0.1:${natsPort}`,
      '--http-addr', '127.0.0.1:0',
      '--log-level', 'warn',
      // The HIGH-recovery test sends ~100 messages quickly from one session.
      '--send-rate', '200',
      '--send-burst', '400',
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const httpUrl = `http://${addr}`;
  try {
    await waitHealthy(httpUrl, proc, 60_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return {
    bin,
    data,
    wsUrl: `ws://${addr}/ws`,
    httpUrl,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((r) => proc.once('exit', () => r()));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const tmp = mkdtempSync(join(tmpdir(), 'liveim-sdk-js-'));
  const bin = buildLiveim(tmp);
  const srv = await startLiveim(bin, tmp);
  const { buildIife } = (await import(join(sdkRoot, 'scripts/build.mjs'))) as { buildIife: (out: string) => Promise<string> };
  const iife = await buildIife(join(tmp, 'liveim-im.iife.js'));
  project.provide('liveim', { bin, data: srv.data, wsUrl: srv.wsUrl, httpUrl: srv.httpUrl, iife, tmp });

  return async () => {
    await srv.stop();
    rmSync(tmp, { recursive: true, force: true });
  };
}
