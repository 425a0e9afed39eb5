import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import proxyaddr from 'proxy-addr';

/**
 * Which peers are trusted proxies (`GREENROOM_TRUST_PROXY`): `false` (none: the socket's peer is the client), a hop
 * count (that many proxies in front, nearest first; `true` is 1), or addresses and CIDRs (and the presets
 * `loopback`, `linklocal`, `uniquelocal`).
 */
export type TrustProxy = boolean | number | readonly string[];

const PRESETS = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** Parses `GREENROOM_TRUST_PROXY`; throws an Error saying what is wrong with the value. */
export function parseTrustProxy(text: string): TrustProxy {
  const value = text.trim();
  if (/^(false|no|off|0|)$/i.test(value)) return false;
  if (/^(true|yes|on)$/i.test(value)) return true;
  if (/^\d+$/.test(value)) return Number(value);
  const entries = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    if (PRESETS.has(entry)) continue;
    try {
      proxyaddr.compile(entry);
    } catch {
      throw new Error(`"${entry}" is not an address, a CIDR range or one of loopback, linklocal, uniquelocal`);
    }
  }
  return entries;
}

type TrustFn = (address: string, hop: number) => boolean;

function compileTrust(setting: TrustProxy): TrustFn {
  if (setting === false || setting === 0) return () => false;
  if (setting === true) return (_a, hop) => hop < 1;
  if (typeof setting === 'number') return (_a, hop) => hop < setting;
  return setting.length ? proxyaddr.compile([...setting]) : () => false;
}

/** Where a request came from and how the client reached us, read with the trusted proxies in mind. */
export interface RequestSource {
  /** The client address: the nearest untrusted hop, counted from the right. */
  address: string;
  /** Whether the client spoke https (to us, or to the trusted proxy in front of us). */
  secure: boolean;
  /** The host the client asked for (`Host`, or a trusted proxy's `X-Forwarded-Host`). */
  host: string | undefined;
}

/**
 * The trusted-proxy walk. The client address is never a value the client wrote: X-Forwarded-For is read from the
 * right, and only as far as the hops are trusted (the socket's peer first, then each address a trusted proxy
 * appended). `X-Forwarded-Proto` and `X-Forwarded-Host` count only when the socket's peer is a trusted proxy, and
 * then only their last value (the one that proxy wrote); from anyone else they change nothing.
 */
export class ProxyTrust {
  private readonly trust: TrustFn;
  private readonly seen = new WeakMap<IncomingMessage, RequestSource>();

  constructor(readonly setting: TrustProxy = false) {
    this.trust = compileTrust(setting);
  }

  /** Whether the request came through a trusted proxy (its socket's peer is one). */
  viaTrustedProxy(req: IncomingMessage): boolean {
    const peer = req.socket.remoteAddress;
    return peer !== undefined && this.trust(peer, 0);
  }

  source(req: IncomingMessage): RequestSource {
    let source = this.seen.get(req);
    if (!source) {
      source = this.read(req);
      this.seen.set(req, source);
    }
    return source;
  }

  /** The client address (what the limiters count and the log names). */
  clientAddress(req: IncomingMessage): string {
    return this.source(req).address;
  }

  /** The server's own origin as the client sees it (`scheme://host`), the default allowed origin. */
  ownOrigin(req: IncomingMessage): string | null {
    const { secure, host } = this.source(req);
    if (!host) return null;
    try {
      return new URL(`${secure ? 'https' : 'http'}://${host}`).origin;
    } catch {
      return null;
    }
  }

  private read(req: IncomingMessage): RequestSource {
    const peer = req.socket.remoteAddress;
    const encrypted = Boolean((req.socket as { encrypted?: boolean }).encrypted);
    if (peer === undefined) return { address: 'unknown', secure: encrypted, host: req.headers.host };
    if (!this.viaTrustedProxy(req)) return { address: peer, secure: encrypted, host: req.headers.host };
    const proto = lastValue(req.headers['x-forwarded-proto'])?.toLowerCase();
    const forwardedHost = lastValue(req.headers['x-forwarded-host']);
    return {
      address: proxyaddr(req, this.trust) || peer,
      secure: proto === 'https' || proto === 'http' ? proto === 'https' : encrypted,
      host: forwardedHost && validHost(forwardedHost) ? forwardedHost : req.headers.host,
    };
  }
}

/** The last of a header's comma-separated values (the one the nearest proxy wrote). */
function lastValue(header: string | string[] | undefined): string | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  const last = text?.split(',').pop()?.trim();
  return last ? last : undefined;
}

/** A host[:port] and nothing else (no path, userinfo or scheme smuggled in). */
function validHost(host: string): boolean {
  if (!/^[A-Za-z0-9.\-:[\]]+$/.test(host)) return false;
  try {
    return new URL(`http://${host}`).host.length > 0;
  } catch {
    return false;
  }
}

/** The client address of a request (see `ProxyTrust`). */
export function clientAddress(req: IncomingMessage, trust: ProxyTrust): string {
  return trust.clientAddress(req);
}

/**
 * What the limiters count an address as: an IPv4 address as it is (an IPv4-mapped IPv6 address as its IPv4), an IPv6
 * address by its /64. One subscriber usually holds a whole /64, so counting single IPv6 addresses would hand an
 * attacker 2^64 fresh ones.
 */
export function limiterKey(address: string): string {
  const bare = address.replace(/%.*$/, ''); // a zone id (fe80::1%eth0) names an interface, not a host
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare);
  if (mapped) return mapped[1]!;
  if (isIP(bare) !== 6) return address;
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const groups = (part: string | undefined) => (part ? part.split(':') : []).flatMap((g) => (g.includes('.') ? ipv4Groups(g) : [g]));
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/** The two 16-bit groups of an IPv4 address written at the end of an IPv6 address. */
function ipv4Groups(v4: string): string[] {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}
