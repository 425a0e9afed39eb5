/** Bundles the client for pages (one ESM file; `ws` is Node-only and left out). */
import { build } from 'esbuild';
import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export async function bundleClient(outfile: string): Promise<void> {
  await build({
    entryPoints: [fileURLToPath(new URL('../../client/src/index.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external: ['ws'],
    outfile,
    logLevel: 'silent',
  });
}

/**
 * A temp folder of test pages: `<page>.html` and `<page>-page.js` copied from test/pages, and the client bundled
 * beside them as `greenroom-client.js`. Answers the folder (the caller removes it).
 */
export async function pagesWithClient(page: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'greenroom-pages-'));
  const from = fileURLToPath(new URL('../test/pages/', import.meta.url));
  for (const file of [`${page}.html`, `${page}-page.js`]) await copyFile(join(from, file), join(dir, file));
  await bundleClient(join(dir, 'greenroom-client.js'));
  return dir;
}
