/**
 * How `greenroom serve --actors` finds the app's module when it is named as a package: in the node_modules folders
 * from where the command was typed upwards, through the package's `exports` for `import` (an import-only package
 * included), else its `main`. Real files in a temp dir; the fixtures export no actors, so reaching the "expected an
 * actors export" message proves the module was found and loaded.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadActors } from '../src/cli/actors-module.js';
import { tempDirs } from './helpers.js';

const tempDir = tempDirs();
const newDir = () => tempDir('greenroom-actors-module-');

async function installed(root: string, name: string, pkg: Record<string, unknown>, files: Record<string, string>): Promise<void> {
  const dir = join(root, 'node_modules', name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, type: 'module', ...pkg }));
  for (const [file, text] of Object.entries(files)) {
    await mkdir(join(dir, file, '..'), { recursive: true });
    await writeFile(join(dir, file), text);
  }
}

describe('--actors <package>', () => {
  it('loads an import-only package (exports with an import condition) from where the command was typed', async () => {
    const app = await newDir();
    await installed(app, 'esm-app', { exports: { '.': { import: './dist/actors.js' } } }, { 'dist/actors.js': "export const actors = 'not actors';\n" });
    await expect(loadActors('esm-app', app)).rejects.toThrow(/--actors esm-app: expected an `actors` export .*found the string "not actors"/);
  });

  it('loads a scoped package by its main, found in a parent folder', async () => {
    const root = await newDir();
    await installed(root, '@team/chat', { main: 'lib/index.js' }, { 'lib/index.js': 'export default 42;\n' });
    const nested = join(root, 'apps', 'chat');
    await mkdir(nested, { recursive: true });
    await expect(loadActors('@team/chat', nested)).rejects.toThrow(/--actors @team\/chat: expected .*found number 42/);
  });

  it('loads a subpath the package exports', async () => {
    const app = await newDir();
    await installed(app, 'multi', { exports: { '.': './index.js', './actors': { node: './actors.js' } } }, { 'index.js': '', 'actors.js': 'export const actors = [];\n' });
    await expect(loadActors('multi/actors', app)).rejects.toThrow(/found an empty array/);
  });

  it('names a package that is not installed where the command was typed', async () => {
    const app = await newDir();
    await expect(loadActors('nowhere-app', app)).rejects.toThrow(/--actors nowhere-app: no such file, and no such package installed where the command was typed/);
  });
});
