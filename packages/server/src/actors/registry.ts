/**
 * The actor registry: starts each defined actor behind its own mailbox and routes asks to it.
 *
 * Checks from the wire run in the order docs/protocol.md gives — UNKNOWN_ACTOR → UNKNOWN_MESSAGE → FORBIDDEN →
 * BAD_PAYLOAD → handler — so a caller never learns the schema of a message it may not send. They run before the
 * message is queued; the handler then runs inside the actor's mailbox, one message at a time.
 *
 * Pipelined mailboxes: over a staged store (store.ts StagedStore) a handler reads and writes through a MessageStore
 * and its mailbox goes on to the next message as soon as it returns, while its writes flush. Its answer (and its
 * pushes, and the lifecycle events it caused) are held until every flush it depends on is done, so nothing a caller
 * or subscriber hears can be taken back by a crash. Answers to one connection from one instance leave in the order
 * their asks were handled; pushes of one actor in the order they were made.
 *
 * Quotas (docs/security.md): an ask from a connection is queued in its user's lane of a bounded mailbox (full: UNAVAILABLE),
 * and if its deadline has passed before its handler starts — its caller has had TIMEOUT already — it is dropped, never
 * run. Nobody can make an actor's queue grow without bound, or keep it busy with work nobody waits for.
 *
 * Several nodes (the Redis store, `RegistryOptions.nodes`): pushes go to the other nodes' subscribers too, presence
 * counts every node, a kick reaches every node before its handler answers (a `TopicRelay`), and a keyed instance's
 * messages run under its key's lock, so one key's messages run one at a time over all nodes.
 */
import { ErrorCode, type PushFrame } from '@greenroom/protocol';
import type { Logger } from 'pino';
import { GreenroomError, StoreError, toPublicError } from '../errors.js';
import type { ActorSystem, Mailbox } from '../runtime/actor-system.js';
import type { Locks } from '../runtime/keyed-queue.js';
import { isStaged, type Store } from '../store/store.js';
import { catalog, type ActorCatalog } from './catalog.js';
import { z } from 'zod';
import {
  allows,
  definitionOf,
  Forward,
  SYSTEM_CALLER,
  type ActorContext,
  type ActorDefinition,
  type AnyActor,
  type Caller,
  type LifecycleEvents,
  type MessageDef,
  type MessageRef,
  type PayloadArg,
  type SubscriptionControl,
} from './define.js';
import { ActorStore, MessageStore } from './message-store.js';
import { presenceFrame, Topics, type MemberChange, type PresenceEntry, type Subscriber, type TopicRelay } from './topics.js';

export type { Subscriber };

export type Reply = (error: GreenroomError | null, result?: unknown) => void;

interface Envelope {
  readonly message: MessageDef<unknown, any>;
  readonly payload: unknown;
  readonly caller: Caller;
  readonly origin: Subscriber | undefined;
  readonly reply: Reply;
  /** Asks from a connection: when their caller stops waiting (epoch ms). The server's own asks always run. */
  readonly dropAfter: number;
}

/** The lane of the server's own asks (login, registration, asks between actors). */
const SYSTEM_LANE = '\0system';

/** One running copy of an actor: the only one, or (a keyed actor) the one of one key. */
interface Instance {
  readonly key: string | null;
  readonly mailbox: Mailbox<Envelope>;
  /** What its state holds as the store: the running message's store while one runs. */
  readonly store: ActorStore;
  /** Answers held for a flush, in one line per connection. */
  readonly answers: Lines;
  state: unknown;
  /** Resolves once `state` is built (a keyed instance builds it as it starts, with its first message queued). */
  ready: Promise<void>;
  /** Messages posted to it and not finished (answered): an instance is idle at 0. */
  pending: number;
  idleTimer: NodeJS.Timeout | null;
}

interface Host {
  readonly definition: ActorDefinition<unknown>;
  readonly topics: Topics;
  readonly log: Logger;
  readonly deps: unknown;
  /** Its pushes (and the lifecycle events its messages caused), in one line: each after what it depends on. */
  readonly pushes: Lines;
  /** The keyless instance: every message of an unkeyed actor, and those of a keyed one whose payload names no key. */
  root: Instance;
  readonly keyed: Map<string, Instance>;
}

export interface RegistryOptions {
  askTimeoutMs: number;
  /** Asks from connections queued per actor, at most (the server's own asks are never refused). */
  mailboxCapacity: number;
  /** With several nodes: what carries topics across them, and locks per key that hold across them. */
  nodes?: { relay: TopicRelay; locks: Locks };
}

export class ActorRegistry {
  private readonly hosts = new Map<string, Host>();
  /** Numbers the keyed instances' mailboxes. */
  private instanceSeq = 0;
  private readonly relay: TopicRelay | null;

  constructor(
    private readonly system: ActorSystem,
    readonly store: Store,
    private readonly log: Logger,
    private readonly options: RegistryOptions,
  ) {
    this.relay = options.nodes?.relay ?? null;
    this.relay?.connect({
      deliver: (actor, frame) => {
        const host = this.hosts.get(actor);
        // In the actor's line: after the pushes it made here that wait for a flush.
        if (host) host.pushes.send('', undefined, () => this.deliver(host, frame));
      },
      kick: (actor, topic, uid) => {
        const host = this.hosts.get(actor);
        if (host) this.kickHere(host, topic, uid, (f) => this.emit(host, f));
      },
      members: (actor, topic) => this.hosts.get(actor)?.topics.presence(topic) ?? [],
      member: (actor, topic, uid) => this.hosts.get(actor)?.topics.member(topic, uid),
      announces: (actor) => this.hosts.get(actor)?.definition.presence ?? false,
    });
  }

  /** Builds the actor's state (with `deps`, for an actor that takes them) and starts its mailbox. */
  async add<D>(actor: AnyActor<D>, ...deps: [D] extends [void] ? [] : [deps: D]): Promise<void> {
    const definition: ActorDefinition<unknown, D> = definitionOf(actor);
    if (this.hosts.has(definition.name)) throw new Error(`actor ${definition.name} is already registered`);
    const log = this.log.child({ actor: definition.name });
    const store = new ActorStore(this.store);
    const state = await definition.state({ store, log, key: null }, deps[0] as D);
    const pushes = new Lines((err) => log.error({ err }, 'push failed'));
    const relay = this.relay;
    // Across nodes, this node listens to a topic's pushes from the others while it has a subscriber of it.
    const topics = new Topics(relay ? { opened: (t) => relay.open(definition.name, t), closed: (t) => relay.close(definition.name, t) } : {});
    const host = { definition, topics, log, deps: deps[0], pushes, keyed: new Map() } as Omit<Host, 'root'> as Host;
    host.root = this.spawnInstance(host, null, state, store);
    this.hosts.set(definition.name, host);
  }

  /** Starts one instance: its mailbox at once, its state (if not given) built before its first message runs. */
  private spawnInstance(host: Host, key: string | null, state?: unknown, store = new ActorStore(this.store)): Instance {
    // A key can hold any character; the mailbox's name is the actor's and a number (`$` is in no actor's name).
    const name = key === null ? host.definition.name : `${host.definition.name}$${++this.instanceSeq}`;
    // One user's lane holds at most a tenth of the capacity: it takes ten flooding users to fill a mailbox.
    const mailbox = this.system.spawn<Envelope>(name, (env) => this.handle(host, instance, env), {
      capacity: this.options.mailboxCapacity,
      laneCapacity: Math.max(1, Math.floor(this.options.mailboxCapacity / 10)),
    });
    const answers = new Lines((err) => host.log.error({ err }, 'answer failed'));
    const instance: Instance = { key, state, mailbox, store, answers, pending: 0, idleTimer: null, ready: Promise.resolve() };
    if (state === undefined && key !== null) {
      // Built as the instance's first work; a state that throws fails this instance's messages, never the server.
      instance.ready = Promise.resolve()
        .then(() => host.definition.state({ store, log: host.log, key }, host.deps))
        .then((s) => void (instance.state = s));
      instance.ready.catch(() => undefined);
    }
    return instance;
  }

  /** The instance a message goes to: its key's (started on demand), or the root; null past the actor's instance cap. */
  private instanceFor(host: Host, payload: unknown): Instance | null {
    let key: unknown;
    try {
      key = host.definition.key?.(payload);
    } catch (err) {
      host.log.error({ err }, 'key function failed; the keyless instance takes the message');
    }
    if (typeof key !== 'string' || key.length === 0) return host.root;
    let instance = host.keyed.get(key);
    if (!instance) {
      // Keys come from clients: at the cap, the longest-running idle instance makes room (its state comes back from
      // the store when its key is asked again); with none idle, a new key waits while the running ones keep serving.
      if (host.keyed.size >= host.definition.maxInstances && !this.evictIdle(host)) return null;
      host.keyed.set(key, (instance = this.spawnInstance(host, key)));
    }
    if (instance.idleTimer) {
      clearTimeout(instance.idleTimer);
      instance.idleTimer = null;
    }
    return instance;
  }

  /** Stops the oldest instance with nothing to do, if any. */
  private evictIdle(host: Host): boolean {
    for (const [key, instance] of host.keyed) {
      if (instance.pending > 0) continue;
      if (instance.idleTimer) clearTimeout(instance.idleTimer);
      host.keyed.delete(key);
      this.system.stopOne(instance.mailbox.name);
      return true;
    }
    return false;
  }

  /** A keyed instance with nothing left to do stops after the actor's idle time; its next message starts it again. */
  private finished(host: Host, instance: Instance): void {
    instance.pending -= 1;
    if (instance.key === null || instance.pending > 0) return;
    // Already replaced (its state failed): nothing more can reach it.
    if (host.keyed.get(instance.key) !== instance) return this.system.stopOne(instance.mailbox.name);
    instance.idleTimer = setTimeout(() => {
      if (instance.pending > 0 || host.keyed.get(instance.key!) !== instance) return;
      host.keyed.delete(instance.key!);
      this.system.stopOne(instance.mailbox.name);
    }, host.definition.idleMs).unref();
  }

  /** Messages queued in an actor's mailboxes, not yet started (0 for an unknown actor). */
  queued(actor: string): number {
    const host = this.hosts.get(actor);
    if (!host) return 0;
    let n = host.root.mailbox.size;
    for (const i of host.keyed.values()) n += i.mailbox.size;
    return n;
  }

  /** Running instances of a keyed actor (its keys started and not yet stopped for idleness). */
  instances(actor: string): number {
    return this.hosts.get(actor)?.keyed.size ?? 0;
  }

  names(): string[] {
    return [...this.hosts.keys()];
  }

  /** What `caller` may send and subscribe to, for `GET /actors`. */
  catalog(caller: Caller): ActorCatalog {
    return catalog([...this.hosts.values()].map((h) => h.definition), caller);
  }

  /** An ask from a client frame: every check, in order, then the handler. Always answers through `reply`. */
  dispatchFromClient(caller: Caller, origin: Subscriber, to: string, type: string, payload: unknown, reply: Reply): void {
    const host = this.hosts.get(to);
    if (!host) return reply(new GreenroomError(ErrorCode.UNKNOWN_ACTOR, `no actor named ${to}`));
    const message = host.definition.messages[type];
    if (!message || message.internal) return reply(new GreenroomError(ErrorCode.UNKNOWN_MESSAGE, `${to} has no message ${type}`));
    if (!allows(message.allow, caller)) return reply(new GreenroomError(ErrorCode.FORBIDDEN, `${to}.${type} is not allowed for your role`));
    const timeoutMs = this.options.askTimeoutMs;
    this.enqueue(host, message, payload, caller, origin, this.withDeadline(reply, timeoutMs), Date.now() + timeoutMs);
  }

  /** An ask from the server itself. */
  ask<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Promise<R> {
    return this.askAs(SYSTEM_CALLER, ref, (payload[0] ?? {}) as P);
  }

  /** An ask on behalf of a caller the server has already authenticated (the admin socket's operator). */
  askAs<P, R>(caller: Caller, ref: MessageRef<P, R>, payload: NoInfer<P>, timeoutMs?: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.dispatch(ref.actor, ref.type, payload, caller, (err, result) => (err ? reject(err) : resolve(result as R)), timeoutMs);
    });
  }

  private dispatch(to: string, type: string, payload: unknown, caller: Caller, reply: Reply, timeoutMs = this.options.askTimeoutMs): void {
    const host = this.hosts.get(to);
    if (!host) return reply(new GreenroomError(ErrorCode.UNKNOWN_ACTOR, `no actor named ${to}`));
    const message = host.definition.messages[type];
    if (!message) return reply(new GreenroomError(ErrorCode.UNKNOWN_MESSAGE, `${to} has no message ${type}`));
    this.enqueue(host, message, payload, caller, undefined, this.withDeadline(reply, timeoutMs), Infinity);
  }

  private enqueue(
    host: Host,
    message: MessageDef<unknown, any>,
    payload: unknown,
    caller: Caller,
    origin: Subscriber | undefined,
    reply: Reply,
    dropAfter: number,
  ): void {
    const parsed = message.payload.safeParse(payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      return reply(new GreenroomError(ErrorCode.BAD_PAYLOAD, `${where}${issue?.message ?? 'invalid payload'}`));
    }
    // Connections queue in their user's lane (so one user's backlog delays others by one message per turn, not
    // by its length), bounded; the server's own asks share one lane and are never refused.
    const fromClient = origin !== undefined;
    const lane = fromClient ? (caller.uid ?? caller.connectionId ?? SYSTEM_LANE) : SYSTEM_LANE;
    const instance = this.instanceFor(host, parsed.data);
    if (!instance) return reply(new GreenroomError(ErrorCode.UNAVAILABLE, `${host.definition.name} has too many instances running; try again`, { retryAfterSeconds: 1 }));
    if (instance.mailbox.post({ message, payload: parsed.data, caller, origin, reply, dropAfter }, lane, fromClient)) {
      instance.pending += 1;
    } else {
      // A key started for this message alone still stops when idle.
      if (instance.pending === 0) {
        instance.pending = 1;
        this.finished(host, instance);
      }
      reply(new GreenroomError(ErrorCode.UNAVAILABLE, `${host.definition.name} is busy; try again`, { retryAfterSeconds: 1 }));
    }
  }

  /** Answers TIMEOUT when the handler has not answered in time; whichever answer comes first wins. */
  private withDeadline(reply: Reply, timeoutMs: number): Reply {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reply(new GreenroomError(ErrorCode.TIMEOUT, 'the actor did not answer in time'));
    }, timeoutMs);
    return (err, result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reply(err, result);
    };
  }

  private async handle(host: Host, instance: Instance, env: Envelope): Promise<void> {
    let held: Promise<void> | undefined;
    try {
      held = (await this.run(host, instance, env))?.sent;
    } finally {
      // An instance with an answer waiting for a flush is not idle.
      if (held) void held.then(() => this.finished(host, instance));
      else this.finished(host, instance);
    }
  }

  /**
   * Runs the handler; answers when its answer is sent if it waits (for a flush, or an earlier answer). Wrapped: an
   * async function's promise would take on the inner one's wait.
   */
  private async run(host: Host, instance: Instance, env: Envelope): Promise<{ sent: Promise<void> } | undefined> {
    const log = host.log;
    // Its caller has been told TIMEOUT (or is about to be): the work is dropped, not done late.
    if (Date.now() >= env.dropAfter) return void env.reply(new GreenroomError(ErrorCode.TIMEOUT, 'the actor did not answer in time'));
    try {
      await instance.ready;
    } catch (err) {
      // The next message for this key starts a fresh instance; this one answers what it holds and stops.
      if (instance.key !== null && host.keyed.get(instance.key) === instance) {
        host.keyed.delete(instance.key);
        if (!(err instanceof GreenroomError)) log.error({ err, key: instance.key }, 'state failed');
      }
      return this.answer(instance, env, undefined, { error: err });
    }
    const message = isStaged(this.store) ? new MessageStore(this.store) : null;
    const ctx = new Context(this, host, instance, env, message);
    let outcome: Outcome;
    instance.store.current = message;
    try {
      outcome = { result: await this.runHandler(host, instance, env, ctx) };
    } catch (err) {
      // A store that cannot be reached is an outage the connection already reports once, not a bug of the handler.
      if (err instanceof StoreError && err.code === 'STORE_UNAVAILABLE') log.debug({ code: err.code }, 'handler: the store is not reachable');
      else if (!(err instanceof GreenroomError)) log.error({ err }, 'handler failed');
      outcome = { error: err };
    } finally {
      instance.store.current = null;
    }
    const after = whenAll([message?.seal(), ...ctx.effects]);
    const held = ctx.seal();
    if (held) {
      host.pushes.send('', after, (failed) => {
        // Nothing is told about writes that failed to flush, nor after a kick the other nodes could not be told of.
        if (failed !== null) return;
        for (const event of held.events) event();
        this.publishHere(host, held.frames);
      });
    }
    return this.answer(instance, env, after, outcome);
  }

  /**
   * Runs a message's handler. Across nodes, a keyed instance's handler runs under its key's lock, so one key's
   * messages run one at a time over every node, as they do in one mailbox: a read-modify-write through `ctx.store`
   * is atomic. The lock is taken once the mailbox has handed over the message and released when the handler returns,
   * never held while a mailbox waits, so it adds no wait to the mailbox's own; a handler that asks, under its key's
   * lock, for something that needs that lock on another node waits at most the ask timeout, as two mailboxes asking
   * each other do on one node.
   */
  private runHandler(host: Host, instance: Instance, env: Envelope, ctx: Context): unknown {
    const locks = this.options.nodes?.locks;
    if (!locks || instance.key === null) return env.message.handle(env.payload, ctx);
    return locks.run(`k:${host.definition.name}/${instance.key}`, async () => {
      // Its caller may have stopped waiting while another node held the key: dropped, not done late.
      if (Date.now() >= env.dropAfter) throw new GreenroomError(ErrorCode.TIMEOUT, 'the actor did not answer in time');
      return env.message.handle(env.payload, ctx);
    });
  }

  /**
   * Sends a message's answer once `after` is done, and after every earlier answer held for the same connection (a
   * server's own ask waits for nothing but its flush); a flush that failed answers its error instead.
   */
  private answer(instance: Instance, env: Envelope, after: Promise<void> | undefined, outcome: Outcome): { sent: Promise<void> } | undefined {
    const sent = instance.answers.send(env.origin?.connectionId ?? null, after, (failed) => {
      if (failed !== null) return env.reply(toPublicError(failed));
      if ('error' in outcome) return env.reply(toPublicError(outcome.error));
      const result = outcome.result;
      // The other actor answers the original caller. It runs as the server itself, remembering whom for.
      if (result instanceof Forward) this.dispatch(result.ref.actor, result.ref.type, result.payload, forwardedFor(env.caller), env.reply);
      else env.reply(null, result === undefined ? null : result);
    });
    return sent && { sent };
  }

  /**
   * Delivers a push to a topic's subscribers still allowed to receive it (the actor's `subscribers` rule, against
   * their current role); one who lost the right is dropped silently.
   */
  publish(actor: string, event: string, payload: unknown, topic: string = actor): void {
    const host = this.hosts.get(actor);
    if (host) this.emit(host, [{ event, from: actor, topic, payload }]);
  }

  /** Sends pushes in the actor's line: at once, unless pushes held for a flush are ahead of them (for the contexts). */
  emit(host: Host, frames: PushFrame[]): void {
    if (frames.length > 0) host.pushes.send('', undefined, () => this.publishHere(host, frames));
  }

  /** Delivers pushes made on this node (in the actor's line's turn) and hands them, in that order, to the other nodes. */
  private publishHere(host: Host, frames: readonly PushFrame[]): void {
    this.deliverAll(host, frames);
    this.relay?.publish(host.definition.name, frames);
  }

  /** Delivers pushes to this node's subscribers now (in the actor's line's turn). */
  private deliverAll(host: Host, frames: readonly PushFrame[]): void {
    for (const frame of frames) this.deliver(host, frame);
  }

  private deliver(host: Host, frame: PushFrame): void {
    const rule = host.definition.subscribers;
    for (const sub of host.topics.subscribers(frame.topic)) {
      if (allows(rule, sub.caller)) sub.push(frame);
      else void this.presence(host, [host.topics.remove(frame.topic, sub.connectionId)], (f) => this.deliverAll(host, f));
    }
  }

  /**
   * Tells of the users who joined or left topics. On one node, `send` takes the PresenceChanged pushes (actors with
   * presence). Across nodes the shared presence is written (`ctx.presence` reads it for every actor), and announces
   * them to every node; the promise resolves once it is written (it never rejects).
   */
  private presence(host: Host, changes: Array<MemberChange | null>, send: (frames: PushFrame[]) => void): Promise<void> | undefined {
    const name = host.definition.name;
    const made = changes.filter((c) => c !== null);
    const relay = this.relay;
    if (relay) return whenAll(made.map((c) => relay.count(name, c.topic, c.uid)));
    if (host.definition.presence) send(made.flatMap((c) => (c.change ? [presenceFrame(name, c.topic, c.uid, c.change, c.connections)] : [])));
    return undefined;
  }

  /**
   * Adds a connection to a topic (never one that has closed: an ask queued before its close may run after it). The
   * presence pushes it causes go to `send` (default `emit`: at once). Across nodes, resolves once this node hears
   * the topic's pushes from the others and the shared presence holds the subscriber (rejects: UNAVAILABLE, and the
   * subscription is taken back).
   */
  subscribe(actor: string, topic: string, subscriber: Subscriber, send?: (frames: PushFrame[]) => void): Promise<void> | undefined {
    const host = this.hosts.get(actor);
    if (!host) return undefined;
    const change = host.topics.add(topic, subscriber);
    const presence = this.presence(host, [change], send ?? ((f) => this.emit(host, f)));
    const listening = this.relay && host.topics.has(topic, subscriber.connectionId) ? this.relay.ready(actor, topic) : undefined;
    return whenAll([listening, presence])?.catch((err: unknown) => {
      void this.unsubscribe(actor, topic, subscriber.connectionId, send);
      throw err;
    });
  }

  /** Removes a connection from a topic; across nodes, resolves once the shared presence no longer holds it. */
  unsubscribe(actor: string, topic: string, connectionId: string, send?: (frames: PushFrame[]) => void): Promise<void> | undefined {
    const host = this.hosts.get(actor);
    if (host) return this.presence(host, [host.topics.remove(topic, connectionId)], send ?? ((f) => this.emit(host, f)));
    return undefined;
  }

  /**
   * A kick: every connection of `uid` leaves the topic, here at once (the presence pushes it causes go to `send`)
   * and, across nodes, on every other node: `confirmed` resolves once they have confirmed it and the shared presence
   * is written (rejects: UNAVAILABLE). `removed` counts this node's subscriptions.
   */
  kick(actor: string, topic: string, uid: string, send?: (frames: PushFrame[]) => void): { removed: number; confirmed?: Promise<void> } {
    const host = this.hosts.get(actor);
    if (!host) return { removed: 0 };
    const { removed, written } = this.kickHere(host, topic, uid, send ?? ((f) => this.emit(host, f)));
    const confirmed = whenAll([this.relay?.kick(actor, topic, uid), written]);
    return confirmed ? { removed, confirmed } : { removed };
  }

  private kickHere(host: Host, topic: string, uid: string, send: (frames: PushFrame[]) => void): { removed: number; written?: Promise<void> } {
    const before = host.topics.size;
    const written = this.presence(host, host.topics.removeUser(topic, uid), send);
    const removed = before - host.topics.size;
    return written ? { removed, written } : { removed };
  }

  /** Who is subscribed to a topic: on this node, or across nodes on every one. */
  presenceOf(actor: string, topic: string): Promise<PresenceEntry[]> {
    const host = this.hosts.get(actor);
    if (!host) return Promise.resolve([]);
    return this.relay ? this.relay.presence(actor, topic) : Promise.resolve(host.topics.presence(topic));
  }

  /** Subscriptions to an actor's topics, over all of them. */
  subscribers(actor: string): number {
    return this.hosts.get(actor)?.topics.size ?? 0;
  }

  /** Called when a connection closes: its subscriptions go, and the actors that listen hear of it. */
  connectionClosed(connectionId: string, principal: { uid: string; sid: string } | null): void {
    for (const host of this.hosts.values()) void this.presence(host, host.topics.removeConnection(connectionId), (f) => this.emit(host, f));
    if (principal) this.lifecycle('connectionClosed', { connectionId, uid: principal.uid, sid: principal.sid });
  }

  /**
   * Runs an actor's lifecycle hook in its mailbox, as the server itself, once per event; a hook that fails is
   * logged, never retried.
   */
  lifecycle<K extends keyof LifecycleEvents>(kind: K, info: LifecycleEvents[K]): void {
    for (const host of this.hosts.values()) {
      const hook = host.definition.hooks[kind];
      if (!hook) continue;
      const message: MessageDef<unknown, any> = { allow: [], internal: true, payload: ANY, handle: (p, ctx) => hook(p as never, ctx) };
      const reply: Reply = (err) => {
        if (err) this.log.warn({ actor: host.definition.name, hook: kind, code: err.code }, 'lifecycle hook failed');
      };
      if (host.root.mailbox.post({ message, payload: info, caller: SYSTEM_CALLER, origin: undefined, reply: this.withDeadline(reply, this.options.askTimeoutMs), dropAfter: Infinity }, SYSTEM_LANE, false)) {
        host.root.pending += 1;
      }
    }
  }
}

type Outcome = { result: unknown } | { error: unknown };

/** One promise for several (undefined: nothing to wait for); rejects with the first that fails. */
function whenAll(waits: ReadonlyArray<Promise<void> | undefined>): Promise<void> | undefined {
  const pending = waits.filter((w) => w !== undefined);
  if (pending.length <= 1) return pending[0];
  return Promise.all(pending).then(() => undefined);
}

/**
 * Sends in lines: a send runs once what it depends on (a flush) is done and every earlier send of its line has run,
 * or at once when neither is pending; sends of different lines never wait on each other. `failed` is the flush's
 * error, or null.
 */
class Lines {
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly onError: (err: unknown) => void) {}

  /** Answers the promise of the send when it waits, undefined when it ran at once. A null `line`: in no line. */
  send(line: string | null, after: Promise<void> | undefined, send: (failed: unknown) => void): Promise<void> | undefined {
    const before = line === null ? undefined : this.tails.get(line);
    if (!after && !before) {
      this.run(send, null);
      return undefined;
    }
    const flushed = after?.then(
      () => null,
      (err: unknown) => err ?? new StoreError('STORE_WRITE_FAILED', 'a write failed'),
    );
    const ready: Promise<unknown> = before ? before.then(() => flushed ?? null) : flushed!;
    const done = ready.then((failed) => this.run(send, failed));
    if (line !== null) {
      this.tails.set(line, done);
      void done.then(() => {
        if (this.tails.get(line) === done) this.tails.delete(line);
      });
    }
    return done;
  }

  private run(send: (failed: unknown) => void, failed: unknown): void {
    try {
      send(failed);
    } catch (err) {
      this.onError(err);
    }
  }
}

/** A hook's payload comes from the server itself: nothing to validate. */
const ANY = z.any();

/** The server's own caller, on behalf of `caller` (kept for attribution only: it grants nothing). */
function forwardedFor(caller: Caller): Caller {
  return caller.system ? caller : Object.freeze({ ...SYSTEM_CALLER, via: caller.via ?? caller });
}

class Context implements ActorContext<unknown>, SubscriptionControl {
  /** A message over a staged store holds its pushes and lifecycle events until its answer may leave. */
  private readonly frames: PushFrame[] = [];
  private readonly events: Array<() => void> = [];
  /** What the message waits for on other nodes (a kick confirmed): its answer and its later pushes wait for it too. */
  readonly effects: Array<Promise<void>> = [];
  private sealed = false;

  constructor(
    private readonly registry: ActorRegistry,
    private readonly host: Host,
    private readonly instance: Instance,
    private readonly env: Envelope,
    private readonly message: MessageStore | null,
  ) {}

  private get holding(): boolean {
    return !this.sealed && (this.message !== null || this.effects.length > 0);
  }

  /** Where the message's pushes go: held with it, or (nothing to wait for) the actor's line at once. */
  private readonly send = (frames: PushFrame[]): void => {
    if (this.holding) this.frames.push(...frames);
    else this.registry.emit(this.host, frames);
  };

  /** The handler has returned: what it held, to send once its flushes are done (null: nothing). */
  seal(): { frames: PushFrame[]; events: Array<() => void> } | null {
    const held = this.holding && (this.frames.length > 0 || this.events.length > 0);
    this.sealed = true;
    return held ? { frames: this.frames, events: this.events } : null;
  }

  get log(): Logger {
    return this.host.log;
  }
  get state(): unknown {
    return this.instance.state;
  }
  get key(): string | null {
    return this.instance.key;
  }
  get caller(): Caller {
    return this.env.caller;
  }
  get store(): Store {
    return this.message ?? this.registry.store;
  }
  ask<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Promise<R> {
    return this.registry.ask(ref, ...payload);
  }
  forward<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Forward<R> {
    return new Forward<R>(ref, payload[0] ?? {});
  }
  publish(event: string, payload: unknown, options: { topic?: string } = {}): void {
    const name = this.host.definition.name;
    this.send([{ event, from: name, topic: options.topic ?? name, payload }]);
  }
  unsubscribe(options: { topic: string; uid: string }): number {
    const { removed, confirmed } = this.registry.kick(this.host.definition.name, options.topic, options.uid, this.send);
    if (confirmed) this.effects.push(confirmed);
    return removed;
  }
  presence(topic: string = this.host.definition.name): Promise<PresenceEntry[]> {
    return this.registry.presenceOf(this.host.definition.name, topic);
  }
  /** For the built-ins (define.ts notifyLifecycle): a session ended, a user was deleted. */
  lifecycle<K extends keyof LifecycleEvents>(kind: K, info: LifecycleEvents[K]): void {
    // Other actors hear of it once what it is about is durable.
    if (this.holding) this.events.push(() => this.registry.lifecycle(kind, info));
    else this.registry.lifecycle(kind, info);
  }

  // ---- the framework's Subscribe, Unsubscribe and Presence ----

  async subscribeCaller(topic: string = this.host.definition.name): Promise<string> {
    const origin = this.env.origin;
    if (!origin) throw new GreenroomError(ErrorCode.BAD_REQUEST, 'only a connection can subscribe');
    // The actor's own topic is open to whoever its rule lets subscribe; any other only if mayJoin says so.
    const mayJoin = this.host.definition.mayJoin;
    const kicks = this.host.topics.kicks(topic, origin.caller.uid);
    const refused = () => new GreenroomError(ErrorCode.FORBIDDEN, `you may not subscribe to ${this.host.definition.name} topic ${topic}`);
    if (topic !== this.host.definition.name && !(mayJoin && (await mayJoin(topic, this)))) throw refused();
    // A kick while mayJoin was deciding (a keyed actor kicks in another instance) wins over this subscribe.
    if (this.host.topics.kicks(topic, origin.caller.uid) !== kicks) throw refused();
    await this.registry.subscribe(this.host.definition.name, topic, origin, this.send);
    return topic;
  }
  async unsubscribeCaller(topic: string = this.host.definition.name): Promise<string> {
    if (this.env.origin) await this.registry.unsubscribe(this.host.definition.name, topic, this.env.origin.connectionId, this.send);
    return topic;
  }
  presenceFor(topic: string = this.host.definition.name): Promise<PresenceEntry[]> {
    if (!this.env.origin || !this.host.topics.has(topic, this.env.origin.connectionId)) {
      throw new GreenroomError(ErrorCode.FORBIDDEN, 'presence is for subscribers of that topic');
    }
    return this.registry.presenceOf(this.host.definition.name, topic);
  }
}
