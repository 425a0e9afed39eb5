/** Bundles the client for pages (one ESM file; `ws` is Node-only and left out). */
import { build } from 'esbuild';
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
