/**
 * ChatRoom: chat rooms, one keyed instance per room (its messages serialized, rooms concurrent), each room a topic.
 *
 * Members join a room (stored, so a restart keeps them), then subscribe to its topic: `mayJoin` lets only members
 * in, so nobody reads a room they are not in. Messages are stored under `<room>/<uuid v7>`, so the latest are one
 * reverse prefix scan away. Moderators kick: the member leaves and their sockets stop hearing the room at once.
 */
import { z } from 'zod';
import { v7 as uuidv7 } from 'uuid';
import { defineActor, ErrorCode, GreenroomError, type ActorContext } from '@greenroom/server';

const MEMBERS = 'chat-members';
/** Who was kicked from which room: a kick is for good (until a moderator lets them back, which this example leaves out). */
const BANS = 'chat-bans';
const MESSAGES = 'chat-messages';

/** Security: room names come from clients; bounded and plain, so they are safe as store ids and topics. */
const room = z.string().regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'a room is 1 to 48 lowercase letters, digits and dashes');

export interface ChatMessage {
  [key: string]: unknown;
  id: string;
  room: string;
  uid: string | null;
  text: string;
  at: number;
}

const messageSchema = z.object({ id: z.string(), room: z.string(), uid: z.string().nullable(), text: z.string(), at: z.number() });

function memberId(roomName: string, uid: string): string {
  return `${roomName}/${uid}`;
}

async function isMember(ctx: Pick<ActorContext<unknown>, 'store'>, roomName: string, uid: string | null): Promise<boolean> {
  return uid !== null && (await ctx.store.get(MEMBERS, memberId(roomName, uid))) !== undefined;
}

function mustBeMember(member: boolean): void {
  if (!member) throw new GreenroomError(ErrorCode.FORBIDDEN, 'join the room first');
}

export const ChatRoom = defineActor({
  name: 'ChatRoom',
  key: (p: { room?: string }) => p.room,
  idleMs: 5 * 60_000,
  state: () => ({}),
  events: {
    Posted: z.object({ message: messageSchema }),
    Left: z.object({ room: z.string(), uid: z.string(), kicked: z.boolean() }),
  },
  presence: true,
  // The room's topic is for its members (the actor's own topic, 'ChatRoom', carries nothing).
  mayJoin: (topic, ctx) => isMember(ctx, topic, ctx.caller.uid),
  hooks: {
    // A deleted user's memberships go with them.
    userDeleted: async ({ uid }, ctx) => {
      const mine = await ctx.store.findBy(MEMBERS, 'uid', uid);
      await ctx.store.write(mine.map((m) => ({ op: 'delete', collection: MEMBERS, id: m.id })));
    },
  },
  messages: (message) => ({
    Join: message({
      allow: 'any',
      payload: z.object({ room }),
      handle: async (p, ctx) => {
        const uid = ctx.caller.uid;
        if (uid === null) throw new GreenroomError(ErrorCode.BAD_REQUEST, 'only a signed-in user joins a room');
        if (await ctx.store.get(BANS, memberId(p.room, uid))) throw new GreenroomError(ErrorCode.FORBIDDEN, 'you were removed from this room');
        await ctx.store.put(MEMBERS, memberId(p.room, uid), { room: p.room, uid, since: Date.now() });
        return { room: p.room, joined: true };
      },
    }),

    Leave: message({
      allow: 'any',
      payload: z.object({ room }),
      handle: async (p, ctx) => {
        const uid = ctx.caller.uid;
        if (uid === null || !(await isMember(ctx, p.room, uid))) return { room: p.room, left: false };
        await ctx.store.delete(MEMBERS, memberId(p.room, uid));
        ctx.unsubscribe({ topic: p.room, uid });
        ctx.publish('Left', { room: p.room, uid, kicked: false }, { topic: p.room });
        return { room: p.room, left: true };
      },
    }),

    Post: message({
      allow: 'any',
      payload: z.object({ room, text: z.string().trim().min(1).max(2000) }),
      handle: async (p, ctx) => {
        mustBeMember(await isMember(ctx, p.room, ctx.caller.uid));
        // uuid v7 grows with time: the store's id order is the room's order.
        const m: ChatMessage = { id: uuidv7(), room: p.room, uid: ctx.caller.uid, text: p.text, at: Date.now() };
        // Stored (durably) before anyone hears of it.
        await ctx.store.put(MESSAGES, `${p.room}/${m.id}`, m);
        ctx.publish('Posted', { message: m }, { topic: p.room });
        return m;
      },
    }),

    /** The latest messages, newest first; `before` (a message id) pages further back. */
    History: message({
      allow: 'any',
      payload: z.object({ room, limit: z.number().int().min(1).max(100).default(50), before: z.string().max(64).optional() }),
      handle: async (p, ctx) => {
        mustBeMember(await isMember(ctx, p.room, ctx.caller.uid));
        const page = await ctx.store.scan<ChatMessage>(MESSAGES, {
          prefix: `${p.room}/`,
          reverse: true,
          limit: p.limit,
          ...(p.before ? { after: `${p.room}/${p.before}` } : {}),
        });
        return { items: page.items.map((i) => i.value), nextCursor: page.next === null ? null : page.next.slice(p.room.length + 1) };
      },
    }),

    /** Moderators remove a member for good: membership gone, a ban kept, their sockets out before this answers. */
    Kick: message({
      allow: ['moderator', 'admin'],
      payload: z.object({ room, uid: z.uuid() }),
      handle: async (p, ctx) => {
        await ctx.store.write([
          { op: 'delete', collection: MEMBERS, id: memberId(p.room, p.uid) },
          { op: 'put', collection: BANS, id: memberId(p.room, p.uid), value: { room: p.room, uid: p.uid, at: Date.now() } },
        ]);
        const removed = ctx.unsubscribe({ topic: p.room, uid: p.uid });
        ctx.publish('Left', { room: p.room, uid: p.uid, kicked: true }, { topic: p.room });
        return { room: p.room, removed };
      },
    }),
  }),
});
