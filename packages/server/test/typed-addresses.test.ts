/**
 * Server code addresses actors and messages through typed references (`ctx.ask(UserStore.Block, …)`), never by
 * string, so the compiler checks every hop and tools can follow it; each built-in actor's name is written once, in
 * its own file. Reads the sources: a string-addressed ask anywhere in packages/server/src fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** The code of a file without its comments (a comment may name an actor). */
function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const files = sources(SRC);
/** `.ask(` / `.forward(` … whose first argument (after a caller) is a string. */
const BY_STRING = /\.(ask|askAs|forward|register|add)\s*(<[^>]*>)?\(\s*(SYSTEM_CALLER\s*,\s*)?['"`]/;

describe('server code', () => {
  it('asks, forwards and registers by reference, never by a string', () => {
    const found = files.flatMap((f) =>
      code(f)
        .split('\n')
        .filter((line) => BY_STRING.test(line))
        .map((line) => `${relative(SRC, f)}: ${line.trim()}`),
    );
    expect(found).toEqual([]);
  });

  it.each([
    ['SessionStore', 'actors/session-store.ts'],
    ['UserStore', 'actors/user-store.ts'],
    ['FingerprintStore', 'actors/fingerprint-store.ts'],
  ])('writes the name %s in one file only, its own (%s)', (name, own) => {
    const literal = new RegExp(`['"\`]${name}['"\`]`);
    const where = files.filter((f) => literal.test(code(f))).map((f) => relative(SRC, f));
    expect(where).toEqual([own]);
  });

  it('would catch a string-addressed ask (the check itself can fail)', () => {
    expect(BY_STRING.test(`await ctx.ask('UserStore', 'Block', { uid })`)).toBe(true);
    expect(BY_STRING.test(`registry.ask<{ role: string }>("SessionStore", 'Check', p)`)).toBe(true);
    expect(BY_STRING.test(`await ctx.ask(UserStore.Block, { uid })`)).toBe(false);
  });
});
