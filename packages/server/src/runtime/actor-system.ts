/**
 * The only module that knows nact. Everything else speaks of mailboxes: a named actor that takes one message at a
 * time (nact awaits an async handler before the next message), so the state behind a mailbox needs no locks.
 *
 * Why this shape: nact's `query` spawns a temporary actor per call with a 32-bit random name (collisions seen) and
 * its default crash policy drops queued messages. Here a reply travels inside the message as a callback, handlers
 * never throw into nact, and a crash policy that logs and resumes is installed anyway.
 *
 * Each mailbox keeps its own queue and hands nact one "turn" message at a time; a turn handles up to TURN_MESSAGES
 * queued messages, one after the other, each awaited before the next. nact starts every message it handles in a
 * `setImmediate` of its own, so one nact message per actor message meant one event-loop iteration (a poll, a read,
 * a write) per ask: the benchmark's asks ran at half the rate of a plain JSON echo. The order and the one-at-a-time
 * rule are unchanged; the cap on a turn keeps one busy actor from holding the event loop.
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

/** At most this many messages are handled in one turn of an actor before it yields to the event loop. */
const TURN_MESSAGES = 64;
/** The one message nact carries: "handle what is queued". */
const TURN = Symbol('turn');

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
    const queue = new Queue<M>();
    let turnQueued = false;
    const ref = nact.spawn(
      this.system as never,
      async (state: unknown) => {
        for (let n = 0; n < TURN_MESSAGES && queue.size > 0; n++) {
          try {
            await handler(queue.shift());
          } catch (err) {
            // Handlers answer their own errors; this is the last line, so the mailbox keeps serving.
            log.error({ err, actor: name }, 'actor handler threw');
          }
        }
        // Still busy: the rest waits for the next turn, after the event loop has had its go.
        if (queue.size > 0 && !this.stopped) nact.dispatch(ref as never, TURN);
        else turnQueued = false;
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
        if (this.stopped) return;
        queue.push(message);
        if (!turnQueued) {
          turnQueued = true;
          nact.dispatch(ref as never, TURN);
        }
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

/** A FIFO queue with O(1) push and shift (Array#shift is O(n) on a long queue, as in a reconnect storm). */
class Queue<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T {
    const item = this.items[this.head] as T;
    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
