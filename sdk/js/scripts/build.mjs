// Builds dist/, the package's published files:
//
//   esm/index.js      ESM for Node and bundlers (dependencies left external)
//   esm/**/*.d.ts     its declarations (ESM)
//   cjs/index.cjs     CommonJS for Node's require
//   cjs/**/*.d.cts    the same declarations as CommonJS (import paths .cjs)
//   browser/index.js, browser/index.cjs
//                     what the "browser" export condition picks: the same
//                     code without the Node transport, so a browser bundle
//                     never refers to `ws`
//   liveim-im.iife.js the script-tag and mini-program bundle (everything
//                     inlined but `ws`), its source map beside it
//   LICENSE, NOTICE   from the repository root
//
// Every .js/.cjs has a source map (with the sources inside).
//   node scripts/build.mjs
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(root, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const external = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];

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

/**
 * buildIife writes the browser bundle to outfile (tests build their own
 * copy) and its source map to outfile.map. The map is not linked from the
 * bundle (no sourceMappingURL comment): pages and mini-programs that copy
 * only the .js file then ask for no missing file, and the map is there for
 * symbolicating errors (devtools, a mini-program's error analysis).
 */
export async function buildIife(outfile = join(root, 'dist/liveim-im.iife.js')) {
  await esbuild.build({
    ...common,
    entryPoints: [join(root, 'src/browser.ts')],
    outfile,
    format: 'iife',
    platform: 'browser',
    target: ['es2018'],
    minify: true,
    sourcemap: 'external',
    plugins: [noNodeTransport],
    globalName: 'LiveIM',
    banner: { js: `/* ${pkg.name} ${pkg.version}: window.AliVCInteraction / window.LiveIM */` },
    footer: { js: PUBLISH },
  });
  return outfile;
}

/** The TypeScript declarations of the IIFE bundle: the globals it sets. */
const IIFE_TYPES = `// The script-tag bundle sets window.AliVCInteraction and window.LiveIM
// (one object: the package's whole API) and exports nothing as a module.
import type * as LiveIMNamespace from './esm/index.js';

declare global {
  var AliVCInteraction: typeof LiveIMNamespace;
  var LiveIM: typeof LiveIMNamespace;
}

export {};
`;

/** Relative import paths in declarations: from './x.js', import('./x.js'). */
const RELATIVE_JS_IMPORT = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.\.?\/[^'"]*?)\.js\2/g;

/**
 * copyDeclarationsAsCjs copies the ESM declarations under from to
 * to as .d.cts files whose relative imports end in .cjs, so that
 * CommonJS consumers see CommonJS types.
 */
function copyDeclarationsAsCjs(from, to) {
  for (const ent of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, ent.name);
    if (ent.isDirectory()) {
      copyDeclarationsAsCjs(src, join(to, ent.name));
    } else if (ent.name.endsWith('.d.ts')) {
      mkdirSync(to, { recursive: true });
      const text = readFileSync(src, 'utf8').replace(RELATIVE_JS_IMPORT, '$1$2$3.cjs$2');
      writeFileSync(join(to, ent.name.replace(/\.d\.ts$/, '.d.cts')), text);
    }
  }
}

/** buildAll writes the whole dist/ into dist (a directory it empties first). */
export async function buildAll(dist = join(root, 'dist')) {
  rmSync(dist, { recursive: true, force: true });
  const lib = (format, platform, outfile, plugins = []) =>
    esbuild.build({
      ...common,
      entryPoints: [join(root, 'src/index.ts')],
      outfile,
      format,
      platform,
      target: ['es2020'],
      sourcemap: true,
      external,
      plugins,
    });
  await Promise.all([
    lib('esm', 'neutral', join(dist, 'esm/index.js')),
    lib('cjs', 'node', join(dist, 'cjs/index.cjs')),
    lib('esm', 'browser', join(dist, 'browser/index.js'), [noNodeTransport]),
    lib('cjs', 'browser', join(dist, 'browser/index.cjs'), [noNodeTransport]),
    buildIife(join(dist, 'liveim-im.iife.js')),
  ]);
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(dist, 'esm')],
    { stdio: 'inherit' },
  );
  copyDeclarationsAsCjs(join(dist, 'esm'), join(dist, 'cjs'));
  writeFileSync(join(dist, 'liveim-im.iife.d.ts'), IIFE_TYPES);
  for (const f of ['LICENSE', 'NOTICE']) copyFileSync(join(repoRoot, f), join(dist, f));
  return relative(root, dist);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildAll();
}
