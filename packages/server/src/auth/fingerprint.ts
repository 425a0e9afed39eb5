/**
 * A device fingerprint: the client's device id plus stable request headers, keyed-hashed with a server key so
 * that raw device material is never stored and fingerprints cannot be forged offline.
 */
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export function deriveFingerprint(key: Buffer, deviceId: string | undefined, headers: IncomingHttpHeaders): string {
  const material = [deviceId ?? '', headers['user-agent'] ?? '', headers['accept-language'] ?? ''].join('\n');
  return `fp_${createHmac('sha256', key).update(material).digest('base64url').slice(0, 32)}`;
}
