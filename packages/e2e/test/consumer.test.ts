/**
 * The packages as another team gets them: @greenroom/protocol, client and server packed into tarballs, installed with
 * npm into a project outside this workspace (their dependencies come from the registry), and then:
 * - a 20-line app with one custom actor, registered with one line, type-checks against the installed declarations
 *   (strict, no skipLibCheck), compiles, and runs with plain `node`;
 * - @greenroom/client, installed, logs in and asks that actor from Node;
 * - the installed `greenroom --help` and `greenroom serve` work (serve stops with exit 0 on SIGTERM);
 * - the installed client bundles for the browser with esbuild, and the bundle holds no server code;
 * - the installed test harness (`@greenroom/server/testing`) type-checks and tests an actor with plain `node`.
 *
 * Needs the built packages (the test command builds them first) and the npm registry for the dependencies.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../..', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const PASSWORD = 'consumer-admin-password';

const APP = `import { z } from 'zod';
import { defineActor, Greenroom } from '@greenroom/server';

const Counter = defineActor({
  name: 'Counter',
  state: () => ({ count: 0 }),
  messages: (message) => ({
    Increment: message({
      allow: 'any',
      payload: z.object({ by: z.number().int().min(1).max(100) }),
      handle: (p, ctx) => ({ count: (ctx.state.count += p.by) }),
    }),
  }),
});

const server = await Greenroom.start({ actors: [Counter], config: { port: 0, host: '127.0.0.1' }, staticDir: null });
console.log(JSON.stringify({ url: server.url }));
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
`;

const CLIENT = `import { GreenroomClient, login } from '@greenroom/client';

const [url] = process.argv.slice(2);
const tokens = await login(url, { username: 'admin', password: process.env.PASSWORD });
const client = new GreenroomClient({ url, auth: { mode: 'tokens', tokens } });
await client.connect();
console.log(JSON.stringify(await client.ask('Counter', 'Increment', { by: 2 })));
client.close();
`;

/** A test of an app actor written with the installed harness, as an app author would, with no test framework. */
const HARNESS_TEST = `import { z } from 'zod';
import { defineActor } from '@greenroom/server';
import { eventually, expectError, expectOk, issueSession, loginWithPassword, startTestServer, TestClient } from '@greenroom/server/testing';

const Counter = defineActor({
  name: 'Counter',
  state: () => ({ count: 0 }),
  messages: (message) => ({
    Increment: message({ allow: 'any', payload: z.object({ by: z.number().int().min(1) }), handle: (p, ctx) => ({ count: (ctx.state.count += p.by) }) }),
  }),
});

const server = await startTestServer({ actors: [Counter], config: { admin: { username: 'root', password: 'harness-password' } } });
try {
  const session = await issueSession(server, { role: 'user' });
  const client = await TestClient.connect(server, session.accessToken);
  const counted = await expectOk<{ count: number }>(client.ask('Counter', 'Increment', { by: 2 }));
  await expectError(client.ask('Counter', 'Increment', { by: 0 }), 'BAD_PAYLOAD');
  // Retried until it passes: the count goes 3, 4.
  const increment = () => expectOk<{ count: number }>(client.ask('Counter', 'Increment', { by: 1 }));
  const reached = await eventually(async () => (await increment()).count >= 4, { timeoutMs: 2_000 });
  const login = await loginWithPassword(server, { username: 'root', password: 'harness-password' });
  await client.close();
  console.log(JSON.stringify({ count: counted.count, reached, login: login.status }));
} finally {
  await server.close();
}
`;

/** Starts a process and resolves with the first JSON line that has a `url`. */
function started(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${err}`)));
  });
}

describe('the packages installed into a project outside the workspace', () => {
  let project: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    const packs = await mkdtemp(join(tmpdir(), 'greenroom-packs-'));
    for (const p of ['protocol', 'client', 'server']) {
      await run('npx', ['--yes', 'pnpm@10.34.9', 'pack', '--pack-destination', packs], { cwd: join(root, 'packages', p) });
    }
    const tarballs = (await readdir(packs)).map((f) => join(packs, f));
    expect(tarballs).toHaveLength(3);
    project = await mkdtemp(join(tmpdir(), 'greenroom-consumer-'));
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs, 'zod@4', '@types/node@20'], { cwd: project, timeout: 240_000 });
    await rm(packs, { recursive: true, force: true });
  }, 300_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    if (project) await rm(project, { recursive: true, force: true });
  });

  it('type-checks a 20-line app against the installed declarations, runs it with node, and the installed client asks it', async () => {
    await writeFile(join(project, 'app.ts'), APP);
    await writeFile(join(project, 'ask.mjs'), CLIENT);
    const tsconfig = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], outDir: 'out' }, files: ['app.ts'] };
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project });

    // The declarations carry real types, not \`any\`: a wrongly typed setting fails to compile.
    await writeFile(join(project, 'bad.ts'), APP.replace("port: 0", "port: 'eighty'"));
    await expect(run(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', 'bad.ts'], { cwd: project })).rejects.toMatchObject({
      stdout: expect.stringContaining('TS2322'),
    });

    const app = spawn(process.execPath, ['out/app.js'], {
      cwd: project,
      env: { ...process.env, GREENROOM_DATA: join(project, 'data'), GREENROOM_ADMIN: `admin:${PASSWORD}`, GREENROOM_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(app);
    const url = await started(app);
    const asked = await run(process.execPath, ['ask.mjs', url], { cwd: project, env: { ...process.env, PASSWORD } });
    expect(JSON.parse(asked.stdout)).toEqual({ count: 2 });
    const exited = new Promise((resolve) => app.once('exit', resolve));
    app.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000);

  it('runs the installed greenroom --help and greenroom serve (SIGTERM: exit 0)', async () => {
    const bin = join(project, 'node_modules/.bin/greenroom');
    const help = await run(bin, ['--help'], { cwd: project });
    expect(help.stdout).toMatch(/greenroom serve/);
    const serve = spawn(bin, ['serve'], { cwd: project, env: { ...process.env, GREENROOM_PORT: '0', GREENROOM_DATA: join(project, 'serve-data') }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(serve);
    const url = await started(serve);
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    // The dashboard ships inside the package and is served at /.
    expect((await fetch(`${url}/`)).status).toBe(200);
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    serve.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);

  it('type-checks a test written with the installed harness (@greenroom/server/testing) and runs it with node', async () => {
    await writeFile(join(project, 'harness.ts'), HARNESS_TEST);
    const compilerOptions = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], outDir: 'out' };
    await writeFile(join(project, 'tsconfig.harness.json'), JSON.stringify({ compilerOptions, files: ['harness.ts'] }));
    await run(process.execPath, [tsc, '-p', 'tsconfig.harness.json'], { cwd: project }).catch((err: { stdout?: string }) => {
      throw new Error(`the harness test does not compile: ${err.stdout}`);
    });
    const ran = await run(process.execPath, ['out/harness.js'], { cwd: project, env: { ...process.env, GREENROOM_LOG_LEVEL: 'silent' } });
    expect(JSON.parse(ran.stdout)).toEqual({ count: 2, reached: true, login: 200 });
  }, 120_000);

  it('bundles the installed client for the browser with no server code in it', async () => {
    await writeFile(join(project, 'page.mjs'), `import { GreenroomClient } from '@greenroom/client';\nexport const client = GreenroomClient;\n`);
    const result = await build({ entryPoints: [join(project, 'page.mjs')], bundle: true, platform: 'browser', format: 'esm', external: ['ws'], write: false, metafile: true, absWorkingDir: project, logLevel: 'silent' });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((i) => i.includes('@greenroom/client/dist/'))).toBe(true);
    expect(inputs.filter((i) => /@greenroom\/server|\/nact\/|\/lowdb\/|\/jose\/|\/pino\/|\/prom-client\//.test(i))).toEqual([]);
    const text = result.outputFiles[0]!.text;
    expect(text).not.toMatch(/SessionStore.*Register|greenroom\.lock|scrypt/);
  });
});
