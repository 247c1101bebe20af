// Builds dist/: ESM and CJS bundles of the SDK (dependencies left
// external), the browser IIFE bundle dist/liveim-im.iife.js (everything
// inlined but the `ws` package, which it does not need), and .d.ts files.
//   node scripts/build.mjs
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = (await import(join(root, 'package.json'), { with: { type: 'json' } })).default;
const external = Object.keys(pkg.dependencies ?? {});

/** Replaces the Node transport (and with it `ws`) by a stub in browser builds. */
const noNodeTransport = {
  name: 'no-node-transport',
  setup(build) {
    build.onResolve({ filter: /\/node-ws\.js$/ }, (args) => ({
      path: join(args.resolveDir, 'node-ws-stub.ts'),
    }));
  },
};

/**
 * Publishes the IIFE's namespace (var LiveIM) on window as LiveIM and
 * AliVCInteraction (one object), and as module.exports under CommonJS.
 */
const PUBLISH = `;(function (ns) {
  var g = typeof window !== 'undefined' ? window : typeof globalThis !== 'undefined' ? globalThis : undefined;
  if (g) { g.LiveIM = ns; g.AliVCInteraction = ns; }
  if (typeof module === 'object' && module !== null) { module.exports = ns; }
})(LiveIM);`;

const common = {
  bundle: true,
  logLevel: 'warning',
  absWorkingDir: root,
  legalComments: 'none',
};

/** buildIife writes the browser bundle to outfile (tests build their own copy). */
export async function buildIife(outfile = join(root, 'dist/liveim-im.iife.js')) {
  await esbuild.build({
    ...common,
    entryPoints: [join(root, 'src/browser.ts')],
    outfile,
    format: 'iife',
    platform: 'browser',
    target: ['es2018'],
    minify: true,
    plugins: [noNodeTransport],
    globalName: 'LiveIM',
    banner: { js: `/* ${pkg.name} ${pkg.version}: window.AliVCInteraction / window.LiveIM */` },
    footer: { js: PUBLISH },
  });
  return outfile;
}

async function buildAll() {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  await Promise.all([
    esbuild.build({
      ...common,
      entryPoints: [join(root, 'src/index.ts')],
      outfile: join(root, 'dist/esm/index.js'),
      format: 'esm',
      platform: 'neutral',
      target: ['es2020'],
      external,
    }),
    esbuild.build({
      ...common,
      entryPoints: [join(root, 'src/index.ts')],
      outfile: join(root, 'dist/cjs/index.cjs'),
      format: 'cjs',
      platform: 'node',
      target: ['es2020'],
      external,
    }),
    buildIife(),
  ]);
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildAll();
}
