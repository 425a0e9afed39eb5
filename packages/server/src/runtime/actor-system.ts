/**
 * The only module that knows nact. Everything else speaks of mailboxes: a named actor that takes one message at a
 * time (nact awaits an async handler before the next message), so the state behind a mailbox needs no locks.
 *
 * Why this shape: nact's `query` spawns a temporary actor per call with a 32-bit random name (collisions seen) and
 * its default crash policy drops queued messages. Here a reply travels inside the message as a callback, handlers
 * never throw into nact, and a crash policy that logs and resumes is installed anyway.
 */
import nact from 'nact';
import type { Logger } from 'pino';

export type MailboxHandler<M> = (message: M) => Promise<void> | void;

export interface Mailbox<M> {
  readonly name: string;
  /** Queues a message; it is handled after every message posted before it. */
  post(message: M): void;
}

type NactRef = { readonly name: string };

export class ActorSystem {
  private readonly system: NactRef;
  private readonly mailboxes = new Map<string, NactRef>();
  private stopped = false;

  constructor(private readonly log: Logger) {
    // Named explicitly: nact generates random names otherwise.
    this.system = nact.start({ name: `greenroom-${process.pid}-${Math.random().toString(36).slice(2, 10)}` } as never) as NactRef;
  }

  /** Spawns a named top-level actor. Names are unique per system; a duplicate is a programming error. */
  spawn<M>(name: string, handler: MailboxHandler<M>): Mailbox<M> {
    if (this.stopped) throw new Error('actor system is stopped');
    if (this.mailboxes.has(name)) throw new Error(`actor ${name} already exists`);
    const log = this.log;
    const ref = nact.spawn(
      this.system as never,
      async (state: unknown, message: M) => {
        try {
          await handler(message);
        } catch (err) {
          // Handlers answer their own errors; this is the last line, so the mailbox keeps serving.
          log.error({ err, actor: name }, 'actor handler threw');
        }
        return state;
      },
      name,
      {
        onCrash: (_msg: unknown, err: unknown, ctx: { resume: unknown }) => {
          log.error({ err, actor: name }, 'actor crashed; resuming');
          return ctx.resume;
        },
      } as never,
    ) as NactRef;
    this.mailboxes.set(name, ref);
    return {
      name,
      post: (message: M) => {
        if (!this.stopped) nact.dispatch(ref as never, message);
      },
    };
  }

  /** Stops every actor; messages posted afterwards are dropped (callers have their own deadlines). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    nact.stop(this.system as never);
    this.mailboxes.clear();
  }
}
