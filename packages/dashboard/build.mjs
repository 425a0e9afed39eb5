// Builds the dashboard into dist/, which the server serves at `/`: one ESM bundle (the client included; `ws` is
// Node-only and never loaded by a page), the page, its stylesheet and icon. No inline script or style anywhere:
// the server's Content-Security-Policy allows only files from its own origin.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const out = join(here, 'dist');

await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(src, 'main.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  external: ['ws'],
  // The workspace packages from their sources: the dashboard builds without building them first.
  conditions: ['greenroom-source'],
  minify: true,
  legalComments: 'none',
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
});
for (const file of ['index.html', 'styles.css', 'favicon.svg']) await copyFile(join(src, file), join(out, file));
console.log(`dashboard: built ${out}`);
