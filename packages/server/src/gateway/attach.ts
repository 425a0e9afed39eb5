/**
 * How Greenroom shares an `http.Server` (or `https.Server`) with the app that owns it.
 *
 * Node calls every `request` listener of a server for every request, and every `upgrade` listener for every
 * upgrade; a listener cannot stop the others. So Greenroom does not answer from a listener of its own but sits in
 * front of them all: it wraps the server's `emit` so that a `request` or `upgrade` for one of Greenroom's paths is
 * handled by Greenroom and reaches no other listener, and every other event is emitted exactly as before. The app's
 * listeners stay where they are (`server.listeners('request')` still lists them), whether they were added before
 * or after the attach; none of them sees Greenroom's paths, and Greenroom never touches a request or an upgrade
 * for any other path — it neither answers nor destroys it.
 *
 * When Greenroom's own listener is the server's only one for an event, nobody else would answer, so it does:
 * a request for another path goes to `otherwise` (the stand-alone server's dashboard, or 404), an upgrade for
 * another path to `otherUpgrade` (404). Node treats an upgrade as a plain request while a server has no `upgrade`
 * listener, so this listener is also what lets upgrades through at all.
 *
 * `detach()` restores `emit` (or, if someone wrapped it after Greenroom, turns Greenroom's wrapper into a plain
 * pass-through) and removes Greenroom's listeners.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';

export type AnyHttpServer = HttpServer | HttpsServer;

export interface Attachment {
  /** Whether a request (or upgrade) target is one of Greenroom's paths. */
  owns(path: string): boolean;
  /** The request handler for Greenroom's paths. */
  request(req: IncomingMessage, res: ServerResponse): void;
  /** The request handler for every other path, used only while no other `request` listener exists. */
  otherwise(req: IncomingMessage, res: ServerResponse): void;
  /** Whether an upgrade target is Greenroom's (the WebSocket endpoint). */
  ownsUpgrade(path: string): boolean;
  /** Upgrades for Greenroom's endpoint, and (only while no other `upgrade` listener exists) every other upgrade. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** The path of a request target, without its query. */
export function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?', 1)[0]!;
}

/** Puts Greenroom in front of the server's `request` and `upgrade` listeners; returns the function that undoes it. */
export function attachToServer(server: AnyHttpServer, a: Attachment): () => void {
  let active = true;
  const hadOwnEmit = Object.prototype.hasOwnProperty.call(server, 'emit');
  const original = server.emit;
  const emit = function (this: AnyHttpServer, event: string | symbol, ...args: unknown[]): boolean {
    if (active && (event === 'request' || event === 'checkContinue')) {
      // `checkContinue` is a request with `Expect: 100-continue`, emitted instead of `request` when the app listens
      // for it: Greenroom's own still come here (told to continue), never to the app.
      const req = args[0] as IncomingMessage;
      if (a.owns(pathOf(req))) {
        if (event === 'checkContinue') (args[1] as ServerResponse).writeContinue();
        a.request(req, args[1] as ServerResponse);
        return true;
      }
    } else if (active && event === 'upgrade') {
      const req = args[0] as IncomingMessage;
      if (a.ownsUpgrade(pathOf(req))) {
        a.upgrade(req, args[1] as Duplex, args[2] as Buffer);
        return true;
      }
    }
    return (original as (...all: unknown[]) => boolean).call(this, event, ...args);
  };
  server.emit = emit as typeof server.emit;

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (server.listenerCount('request') === 1) a.otherwise(req, res);
  };
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (server.listenerCount('upgrade') === 1) a.upgrade(req, socket, head);
  };
  server.on('request', onRequest);
  server.on('upgrade', onUpgrade);

  return () => {
    if (!active) return;
    active = false;
    server.off('request', onRequest);
    server.off('upgrade', onUpgrade);
    if (server.emit === emit) {
      if (hadOwnEmit) server.emit = original;
      else delete (server as { emit?: unknown }).emit;
    }
  };
}
