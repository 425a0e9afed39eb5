/**
 * Devices. A client keeps a device id that this server issued (a login or guest sign-in without one gets a fresh
 * one), so two unrelated clients never share a fingerprint and an id cannot be guessed or made up: an id the server
 * did not issue is ignored and replaced. The fingerprint is that id plus stable request headers, keyed-hashed, so raw
 * device material is never stored and fingerprints cannot be forged offline.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const DEVICE_ID = /^dv_([A-Za-z0-9_-]{24})\.([A-Za-z0-9_-]{22})$/;

export class Devices {
  constructor(private readonly key: Buffer) {}

  /** A new device id: 144 random bits and a tag made with the server key. */
  issue(): string {
    const id = randomBytes(18).toString('base64url');
    return `dv_${id}.${this.tag(id)}`;
  }

  /** The id if this server issued it, else null (absent, made up, or tampered with). */
  verify(deviceId: string | undefined): string | null {
    const m = deviceId === undefined ? null : DEVICE_ID.exec(deviceId);
    if (!m) return null;
    const expected = Buffer.from(this.tag(m[1]!));
    const given = Buffer.from(m[2]!);
    return given.length === expected.length && timingSafeEqual(given, expected) ? deviceId! : null;
  }

  /** What the store keeps to recognise a device id (never the id itself: it is a credential of sorts). */
  deviceKey(deviceId: string): string {
    return `dk_${this.mac(`device\n${deviceId}`).slice(0, 32)}`;
  }

  fingerprint(deviceId: string, headers: IncomingHttpHeaders): string {
    return `fp_${this.mac([deviceId, headers['user-agent'] ?? '', headers['accept-language'] ?? ''].join('\n')).slice(0, 32)}`;
  }

  private tag(id: string): string {
    return this.mac(`id\n${id}`).slice(0, 22);
  }

  private mac(material: string): string {
    return createHmac('sha256', this.key).update(material).digest('base64url');
  }
}
