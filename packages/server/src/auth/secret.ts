/**
 * The server secret and the keys derived from it. One secret, several keys (HKDF), so a key used to sign
 * tokens is never also used to seal data or hash fingerprints.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

export interface Keys {
  /** HS256 key for access tokens. */
  readonly jwt: Uint8Array;
  /** HMAC key for refresh tokens, tickets and token hashes. */
  readonly tokens: Buffer;
  /** HMAC key that turns device material into fingerprints. */
  readonly fingerprints: Buffer;
  /** AES-256-GCM key that seals the refresh pair kept for the grace period. */
  readonly seal: Buffer;
}

export function deriveKeys(secret: string): Keys {
  const ikm = Buffer.from(secret, 'utf8');
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', ikm, Buffer.from('greenroom'), Buffer.from(info), 32));
  return { jwt: new Uint8Array(derive('jwt')), tokens: derive('tokens'), fingerprints: derive('fingerprints'), seal: derive('seal') };
}

/** GREENROOM_SECRET if set; else the one kept in `<data>/secret` (mode 0600), generated on first start. */
export async function loadSecret(dataDir: string, configured: string | undefined): Promise<string> {
  if (configured) return configured;
  const path = join(dataDir, 'secret');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  try {
    const handle = await open(path, 'wx', 0o600);
    const secret = randomBytes(48).toString('base64url');
    await handle.writeFile(secret);
    await handle.sync();
    await handle.close();
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const secret = (await readFile(path, 'utf8')).trim();
  if (secret.length < 32) throw new ConfigError(`the secret file ${path} is shorter than 32 characters`);
  return secret;
}
