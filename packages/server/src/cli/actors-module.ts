/**
 * `greenroom serve --actors <module>`: the app's actors, from a module the operator names — a path (relative to
 * where the command was typed) or a package name. Whatever goes wrong is a ConfigError naming the module.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isActor, type AnyActor } from '../actors/define.js';
import { ConfigError } from '../errors.js';

const EXPECTED = 'an `actors` export (or a default export) holding an array of actors made with defineActor';

/** Imports `specifier` (resolved from the directory `from`) and returns the actors it exports. */
export async function loadActors(specifier: string, from: string): Promise<AnyActor<void>[]> {
  const target = locate(specifier, from);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(target)) as Record<string, unknown>;
  } catch (err) {
    // The module's own failure, in one line: the operator fixes the module, the stack is not theirs to read.
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`--actors ${specifier}: the module could not be loaded: ${message}`);
  }
  const found = 'actors' in mod ? mod.actors : mod.default;
  const names = Object.keys(mod);
  const problem = 'actors' in mod || 'default' in mod ? checkActors(found) : `it exports ${names.length ? names.slice(0, 8).join(', ') + (names.length > 8 ? ', …' : '') : 'nothing'}`;
  if (problem) throw new ConfigError(`--actors ${specifier}: expected ${EXPECTED}; ${problem}`);
  return found as AnyActor<void>[];
}

/** The URL to import: a file for a path, else the package as resolved from `from`. */
function locate(specifier: string, from: string): string {
  // `dist/actors.js` is meant as a path when there is such a file, as `./dist/actors.js` always is.
  const file = resolve(from, specifier);
  if (existsSync(file)) return pathToFileURL(file).href;
  if (specifier.startsWith('.') || isAbsolute(specifier)) throw new ConfigError(`--actors ${specifier}: no such file: ${file}`);
  // The app's package, or one it depends on: resolved where the command was typed, not where greenroom lives.
  const found = packageEntry(specifier, from);
  if (!found) throw new ConfigError(`--actors ${specifier}: no such file, and no such package installed where the command was typed (${from})`);
  return pathToFileURL(found).href;
}

/**
 * The file a package specifier (`app`, `@team/app`, `app/actors`) names for `import`, looked up in the node_modules
 * folders from `from` upwards: its `exports` (conditions `import`, `node`, `default`), else `module` or `main`.
 */
function packageEntry(specifier: string, from: string): string | null {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  const subpath = `.${specifier.slice(name.length)}`;
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const root = join(dir, 'node_modules', name);
    if (existsSync(join(root, 'package.json'))) {
      let pkg: { exports?: unknown; module?: unknown; main?: unknown };
      try {
        pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as typeof pkg;
      } catch {
        throw new ConfigError(`--actors ${specifier}: ${join(root, 'package.json')} is not valid JSON`);
      }
      const target = exportTarget(pkg.exports, subpath) ?? (subpath === '.' ? String(pkg.module ?? pkg.main ?? 'index.js') : subpath);
      return join(root, target);
    }
    if (dirname(dir) === dir) return null;
  }
}

/** What a package's `exports` gives `subpath` for `import` (null: nothing, or no `exports`). */
function exportTarget(exports: unknown, subpath: string): string | null {
  if (exports === undefined || exports === null) return null;
  const bySubpath = typeof exports === 'object' && !Array.isArray(exports) && Object.keys(exports).some((k) => k.startsWith('.'));
  return pick(bySubpath ? (exports as Record<string, unknown>)[subpath] : subpath === '.' ? exports : undefined);
}

function pick(entry: unknown): string | null {
  if (typeof entry === 'string') return entry;
  if (Array.isArray(entry)) return entry.map(pick).find((t) => t !== null) ?? null;
  if (typeof entry === 'object' && entry !== null) {
    for (const condition of ['import', 'node', 'default']) {
      if (condition in entry) {
        const t = pick((entry as Record<string, unknown>)[condition]);
        if (t !== null) return t;
      }
    }
  }
  return null;
}

/** What is wrong with an `actors` export, in words (null: nothing). */
function checkActors(value: unknown): string | null {
  if (!Array.isArray(value)) return `found ${describe(value)}`;
  if (value.length === 0) return 'found an empty array';
  for (const [i, item] of value.entries()) {
    if (isActor(item)) continue;
    if (fromAnotherCopy(item)) {
      return `item ${i} (${String((item as { name?: unknown }).name)}) was made by another copy of @greenroom/server: the module and the greenroom command must use the same installation`;
    }
    return `item ${i} is ${describe(item)}`;
  }
  return null;
}

/** A handle made by `defineActor` of a different installation: its marker has the same name but is not ours. */
function fromAnotherCopy(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  return Object.getOwnPropertySymbols(value).some((s) => s.description === 'greenroom.actor');
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    return keys.length ? `an object with keys ${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', …' : ''}` : 'an empty object';
  }
  return `${typeof value} ${String(value)}`;
}
