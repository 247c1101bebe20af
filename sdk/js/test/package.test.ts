// The package as an app installs it: scripts/build.mjs builds dist/ into a
// scratch node_modules/@liveim/im that has @bufbuild/protobuf beside it but
// no `ws` (an optional peer dependency). CommonJS and ESM consumers each get
// their build; the package loads without `ws`, and only the Node transport
// needs it (or the runtime's own WebSocket); a bundle for browsers never
// refers to it; an import whose names go unused bundles nothing.
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { server, token, uid } from './helpers.js';

const sdkRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(sdkRoot, '../..');
const pkg = JSON.parse(readFileSync(join(sdkRoot, 'package.json'), 'utf8')) as { version: string };

/** app is the scratch project; withWs is a second one that also has `ws`. */
let app = '';
let withWs = '';
/** dist is the package's dist/ inside app. */
let dist = '';

/** makeApp makes a project dir whose node_modules holds protobuf (and ws when asked). */
function makeApp(dir: string, ws: boolean): string {
  mkdirSync(join(dir, 'node_modules/@liveim/im'), { recursive: true });
  symlinkSync(join(sdkRoot, 'node_modules/@bufbuild'), join(dir, 'node_modules/@bufbuild'), 'dir');
  if (ws) symlinkSync(join(sdkRoot, 'node_modules/ws'), join(dir, 'node_modules/ws'), 'dir');
  writeFileSync(join(dir, 'package.json'), '{"private":true}\n');
  return dir;
}

beforeAll(async () => {
  const base = mkdtempSync(join(server.tmp, 'package-'));
  // The package is a real directory in each project (Node and bundlers
  // resolve its imports from where its files really are).
  app = makeApp(join(base, 'app'), false);
  const pkgDir = join(app, 'node_modules/@liveim/im');
  copyFileSync(join(sdkRoot, 'package.json'), join(pkgDir, 'package.json'));
  const { buildAll } = (await import(join(sdkRoot, 'scripts/build.mjs'))) as { buildAll: (dist: string) => Promise<string> };
  dist = join(pkgDir, 'dist');
  await buildAll(dist);
  withWs = makeApp(join(base, 'app-ws'), true);
  cpSync(pkgDir, join(withWs, 'node_modules/@liveim/im'), { recursive: true });
  // Without this the no-ws cases would prove nothing.
  expect(() => createRequire(join(app, 'index.js')).resolve('ws')).toThrow();
  expect(createRequire(join(withWs, 'index.js')).resolve('ws')).toContain('ws');
});

interface Run {
  code: number;
  out: string;
  err: string;
}

/** node runs a script file in dir with Node's flags, and resolves with what it printed. */
function node(dir: string, file: string, script: string, flags: string[] = [], env: Record<string, string> = {}): Promise<Run> {
  writeFileSync(join(dir, file), script);
  return new Promise((res) => {
    execFile(
      process.execPath,
      [...flags, join(dir, file)],
      { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        res({ code, out: stdout.trim(), err: stderr });
      },
    );
  });
}

/** A consumer that logs in and prints the outcome as JSON (creds in LIVEIM_CREDS). */
const LOGIN_SCRIPT = `
import { ImEngine, ImLogLevel } from '@liveim/im';
const c = JSON.parse(process.env.LIVEIM_CREDS);
const e = new ImEngine();
await e.init({ appId: c.appId, appSign: c.appSign, logLevel: ImLogLevel.NONE, requestTimeoutMs: 5000 });
const disc = [];
e.on('disconnect', (code) => disc.push(code));
try {
  await e.login({ user: { userId: c.userId, userExtension: '{}' }, userAuth: c.auth });
  await e.logout();
  console.log(JSON.stringify({ ok: true, disc }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, code: err.code, msg: err.msg }));
}
e.unInit();
`;

function credsEnv(): Record<string, string> {
  const userId = uid('pkg');
  return { LIVEIM_CREDS: JSON.stringify({ ...token(userId), userId }) };
}

describe('the package', () => {
  it('gives require its CommonJS build and import its ESM build', async () => {
    const cjs = await node(
      app,
      'cjs.cjs',
      `const m = require('@liveim/im');
       console.log(JSON.stringify({ path: require.resolve('@liveim/im'), engine: typeof m.ImEngine.createEngine, level: m.ImMessageLevel.HIGH }));`,
    );
    expect(cjs.err).toBe('');
    expect(JSON.parse(cjs.out)).toEqual({ path: join(dist, 'cjs/index.cjs'), engine: 'function', level: 1 });

    const esm = await node(
      app,
      'esm.mjs',
      `import * as m from '@liveim/im';
       console.log(JSON.stringify({ path: import.meta.resolve('@liveim/im'), engine: typeof m.ImEngine.createEngine, level: m.ImMessageLevel.HIGH }));`,
    );
    expect(esm.err).toBe('');
    const got = JSON.parse(esm.out) as { path: string };
    expect(fileURLToPath(got.path)).toBe(join(dist, 'esm/index.js'));
    expect(got).toMatchObject({ engine: 'function', level: 1 });
  });

  it('loads without ws; then the Node transport says what is missing', async () => {
    const r = await node(app, 'login-missing.mjs', LOGIN_SCRIPT, ['--no-experimental-websocket'], credsEnv());
    expect(r.err).toBe('');
    const got = JSON.parse(r.out) as { ok: boolean; code: number; msg: string };
    expect(got).toMatchObject({ ok: false, code: 503 });
    expect(got.msg).toContain('npm install ws');
  });

  it('without ws uses the runtime WebSocket when there is one', async () => {
    // Node.js 22 and later have one; 20 has it behind a flag.
    const flags = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function' ? [] : ['--experimental-websocket'];
    const r = await node(app, 'login-builtin.mjs', LOGIN_SCRIPT, flags, credsEnv());
    expect(JSON.parse(r.out)).toEqual({ ok: true, disc: [1] });
  });

  it('uses ws when it is installed, from CommonJS too', async () => {
    const r = await node(withWs, 'login-ws.mjs', LOGIN_SCRIPT, ['--no-experimental-websocket'], credsEnv());
    expect(r.err).toBe('');
    expect(JSON.parse(r.out)).toEqual({ ok: true, disc: [1] });
    const cjs = LOGIN_SCRIPT.replace("import { ImEngine, ImLogLevel } from '@liveim/im';", "const { ImEngine, ImLogLevel } = require('@liveim/im');")
      .replace(/^/, '(async () => {')
      .concat('})();');
    const rc = await node(withWs, 'login-ws.cjs', cjs, ['--no-experimental-websocket'], credsEnv());
    expect(rc.err).toBe('');
    expect(JSON.parse(rc.out)).toEqual({ ok: true, disc: [1] });
  });

  it('bundles for browsers without ws, from import and from require', async () => {
    for (const [contents, format, entry] of [
      ["import { ImEngine } from '@liveim/im'; globalThis.e = ImEngine.createEngine;", 'esm', 'dist/browser/index.js'],
      ["const { ImEngine } = require('@liveim/im'); globalThis.e = ImEngine.createEngine;", 'cjs', 'dist/browser/index.cjs'],
    ] as const) {
      // `ws` is not installed here: any reference to it would fail the build.
      const r = await esbuild.build({
        stdin: { contents, resolveDir: app, sourcefile: 'app.js' },
        absWorkingDir: app,
        bundle: true,
        platform: 'browser',
        format,
        write: false,
        metafile: true,
        logLevel: 'silent',
      });
      const inputs = Object.keys(r.metafile.inputs);
      expect(inputs).toContain(`node_modules/@liveim/im/${entry}`);
      expect(inputs.filter((p) => /(^|\/)ws(\/|$)/.test(p))).toEqual([]);
      expect(r.outputFiles[0]?.text).toContain('createEngine');
    }
  });

  it('bundles nothing when nothing it exports is used (sideEffects)', async () => {
    const bundle = async (contents: string) => {
      const r = await esbuild.build({
        stdin: { contents, resolveDir: app, sourcefile: 'app.js' },
        bundle: true,
        platform: 'browser',
        format: 'esm',
        write: false,
        logLevel: 'silent',
      });
      return r.outputFiles[0]?.text ?? '';
    };
    expect(await bundle("import '@liveim/im';")).toBe('');
    // The control: a used name brings the package in.
    expect(await bundle("import { SDK_VERSION } from '@liveim/im'; console.log(SDK_VERSION);")).toContain(`liveim-js/${pkg.version}`);
  });

  it('ships the licence, declarations for both module systems, and source maps', () => {
    expect(readFileSync(join(dist, 'LICENSE'), 'utf8')).toBe(readFileSync(join(repoRoot, 'LICENSE'), 'utf8'));
    expect(readFileSync(join(dist, 'NOTICE'), 'utf8')).toBe(readFileSync(join(repoRoot, 'NOTICE'), 'utf8'));
    expect(readFileSync(join(dist, 'cjs/index.d.cts'), 'utf8')).toContain("from './engine.cjs'");
    expect(existsSync(join(dist, 'cjs/engine.d.cts'))).toBe(true);
    expect(readFileSync(join(dist, 'esm/index.d.ts'), 'utf8')).toContain("from './engine.js'");
    for (const f of ['esm/index.js', 'cjs/index.cjs', 'browser/index.js', 'browser/index.cjs']) {
      const code = readFileSync(join(dist, f), 'utf8');
      const name = f.split('/').pop() as string;
      expect(code.trimEnd().endsWith(`//# sourceMappingURL=${name}.map`), f).toBe(true);
      const map = JSON.parse(readFileSync(join(dist, `${f}.map`), 'utf8')) as { sources: string[]; sourcesContent: string[] };
      expect(map.sources.some((s) => s.endsWith('src/engine.ts')), f).toBe(true);
      expect(map.sourcesContent.length, f).toBe(map.sources.length);
    }
    // The script-tag bundle is copied around alone: its map is beside it, not linked.
    expect(readFileSync(join(dist, 'liveim-im.iife.js'), 'utf8')).not.toContain('sourceMappingURL');
    expect(existsSync(join(dist, 'liveim-im.iife.js.map'))).toBe(true);
  });
});
