/**
 * The only module that knows nact. Everything else speaks of mailboxes: a named actor that takes one message at a
 * time (nact awaits an async handler before the next message), so the state behind a mailbox needs no locks.
 *
 * Why this shape: nact's `query` spawns a temporary actor per call with a 32-bit random name (collisions seen) and
 * its default crash policy drops queued messages. Here a reply travels inside the message as a callback, handlers
 * never throw into nact, and a crash policy that logs and resumes is installed anyway.
 *
 * Each mailbox keeps its own queue and hands nact one "turn" message at a time; a turn handles the queued messages
 * one after the other, each awaited before the next, until none is left or the turn's budget is spent (TURN_BUDGET_MS
 * of the clock, or TURN_MESSAGES messages). nact starts every message it handles in a `setImmediate` of its own, so
 * one nact message per actor message meant one event-loop iteration (a poll, a read, a write) per ask: the
 * benchmark's asks ran at half the rate of a plain JSON echo. A turn that drains what one poll brought in also lets
 * the replies to one socket leave in one write (gateway/connection.ts). The budget keeps one busy actor from holding
 * the event loop.
 *
 * A mailbox is fair between senders: each message is posted in a lane (a user, or the server itself), and lanes take
 * turns, one message each. Within a lane the order is arrival order. So one user who keeps an actor busy delays
 * another sender by at most one message per busy lane, never by the whole backlog it made. A mailbox is also bounded:
 * a bounded post is refused (the caller answers UNAVAILABLE) past `capacity` messages from bounded posts, or past
 * `laneCapacity` in its own lane — so no one sender can take the whole capacity from the others.
 */
import nact from 'nact';
import type { Logger } from 'pino';

export type MailboxHandler<M> = (message: M) => Promise<void> | void;

export interface Mailbox<M> {
  readonly name: string;
  /**
   * Queues a message in `lane`; it is handled after every message posted before it in that lane. A `bounded` post
   * is refused (false) when the mailbox already holds its capacity; an unbounded one (the server's own work, which
   * must not be lost) always queues.
   */
  post(message: M, lane: string, bounded?: boolean): boolean;
  /** Messages queued and not yet started. */
  readonly size: number;
}

export interface SpawnOptions {
  /** At most this many messages from bounded posts queued (default: unbounded). */
  capacity?: number;
  /** At most this many messages queued in one lane by bounded posts (default: `capacity`). */
  laneCapacity?: number;
}

type NactRef = { readonly name: string };

/** A turn of an actor yields to the event loop after this long (ms), or after this many messages, whichever is first. */
const TURN_BUDGET_MS = 2;
const TURN_MESSAGES = 1024;

export interface ActorSystemOptions {
  /** The turn's budget (default TURN_BUDGET_MS, TURN_MESSAGES), and the clock it is measured on (performance.now). */
  turnBudgetMs?: number;
  turnMessages?: number;
  clock?: () => number;
}
/** The one message nact carries: "handle what is queued". */
const TURN = Symbol('turn');

export class ActorSystem {
  private readonly system: NactRef;
  private readonly mailboxes = new Map<string, NactRef>();
  private stopped = false;

  private readonly turnBudgetMs: number;
  private readonly turnMessages: number;
  private readonly clock: () => number;

  constructor(
    private readonly log: Logger,
    options: ActorSystemOptions = {},
  ) {
    this.turnBudgetMs = options.turnBudgetMs ?? TURN_BUDGET_MS;
    this.turnMessages = options.turnMessages ?? TURN_MESSAGES;
    this.clock = options.clock ?? (() => performance.now());
    // Named explicitly: nact generates random names otherwise.
    this.system = nact.start({ name: `greenroom-${process.pid}-${Math.random().toString(36).slice(2, 10)}` } as never) as NactRef;
  }

  /** Spawns a named top-level actor. Names are unique per system; a duplicate is a programming error. */
  spawn<M>(name: string, handler: MailboxHandler<M>, options: SpawnOptions = {}): Mailbox<M> {
    if (this.stopped) throw new Error('actor system is stopped');
    if (this.mailboxes.has(name)) throw new Error(`actor ${name} already exists`);
    const log = this.log;
    const capacity = options.capacity ?? Infinity;
    const laneCapacity = options.laneCapacity ?? capacity;
    const queue = new FairQueue<M>();
    let turnQueued = false;
    const ref = nact.spawn(
      this.system as never,
      async (state: unknown) => {
        const { turnMessages, clock } = this;
        const until = clock() + this.turnBudgetMs;
        for (let n = 0; n < turnMessages && queue.size > 0; n++) {
          try {
            await handler(queue.shift());
          } catch (err) {
            // Handlers answer their own errors; this is the last line, so the mailbox keeps serving.
            log.error({ err, actor: name }, 'actor handler threw');
          }
          if (clock() >= until) break;
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
    // Stopped with the system, or on its own (stopOne).
    const stopped = () => this.stopped || this.mailboxes.get(name) !== ref;
    return {
      name,
      get size() {
        return queue.size;
      },
      post(message: M, lane: string, bounded = false): boolean {
        if (stopped()) return true; // dropped: callers have their own deadlines
        if (bounded && (queue.bounded >= capacity || queue.laneSize(lane) >= laneCapacity)) return false;
        queue.push(lane, message, bounded);
        if (!turnQueued) {
          turnQueued = true;
          nact.dispatch(ref as never, TURN);
        }
        return true;
      },
    };
  }

  /** Stops one actor (an idle keyed instance); messages posted to it afterwards are dropped. */
  stopOne(name: string): void {
    const ref = this.mailboxes.get(name);
    if (!ref) return;
    this.mailboxes.delete(name);
    nact.stop(ref as never);
  }

  /** Stops every actor; messages posted afterwards are dropped (callers have their own deadlines). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    nact.stop(this.system as never);
    this.mailboxes.clear();
  }
}

/**
 * Lanes that take turns: `shift` takes the oldest message of the lane whose turn it is, then that lane goes to the
 * back of the line if it still holds messages. O(1) per push and shift.
 */
class FairQueue<T> {
  private readonly lanes = new Map<string, Queue<{ item: T; bounded: boolean }>>();
  /** Lanes holding messages, in the order of their next turn. */
  private readonly turns = new Queue<string>();
  size = 0;
  /** Of `size`, the messages of bounded posts. */
  bounded = 0;

  laneSize(lane: string): number {
    return this.lanes.get(lane)?.size ?? 0;
  }

  push(lane: string, item: T, bounded: boolean): void {
    let q = this.lanes.get(lane);
    if (!q) {
      this.lanes.set(lane, (q = new Queue()));
      this.turns.push(lane);
    }
    q.push({ item, bounded });
    this.size += 1;
    if (bounded) this.bounded += 1;
  }

  shift(): T {
    const lane = this.turns.shift();
    const q = this.lanes.get(lane)!;
    const { item, bounded } = q.shift();
    this.size -= 1;
    if (bounded) this.bounded -= 1;
    if (q.size > 0) this.turns.push(lane);
    else this.lanes.delete(lane);
    return item;
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
