/**
 * Notes: a small shared notes board, the example app actor of docs/extending.md.
 *
 * Register it with one line: `Greenroom.start({ actors: [Notes] })` or `await server.register(Notes)`.
 */
import { z } from 'zod';
import { v7 as uuidv7 } from 'uuid';
import { defineActor, ErrorCode, GreenroomError, page, pageRequest } from '../src/index.js';

export interface Note {
  [key: string]: unknown;
  id: string;
  /** The author's stable uid (null when the server itself added the note). */
  uid: string | null;
  text: string;
  /** Epoch milliseconds, like every timestamp in Greenroom. */
  created: number;
}

const COLLECTION = 'notes';

const noteSchema = z.object({ id: z.string(), uid: z.string().nullable(), text: z.string(), created: z.number() });

export const Notes = defineActor({
  name: 'Notes',
  // Nothing to keep in memory: the store is the state, so notes survive a restart.
  state: () => ({}),
  // What it pushes; Subscribe and Unsubscribe come with them, for any signed-in caller (`subscribers` narrows it).
  // Each push is re-authorized at delivery against that rule.
  events: {
    NoteAdded: z.object({ note: noteSchema }),
    NoteDeleted: z.object({ id: z.string() }),
  },
  messages: (message) => ({
    Add: message({
      allow: 'any',
      // Security: `text` comes from the client; the schema bounds it before the handler runs.
      payload: z.object({ text: z.string().min(1).max(500) }),
      handle: async ({ text }, ctx) => {
        // uuid v7 ids grow with time, so the store's id order (which List pages in) is creation order.
        const note: Note = { id: uuidv7(), uid: ctx.caller.uid, text, created: Date.now() };
        // Resolves once the note is durable, so subscribers never hear of a note a crash could lose.
        await ctx.store.put(COLLECTION, note.id, note);
        ctx.publish('NoteAdded', { note });
        return note;
      },
    }),

    List: message({
      allow: 'any',
      payload: pageRequest,
      handle: async ({ cursor, limit }, ctx) => {
        const res = await ctx.store.scan<Note>(COLLECTION, { after: cursor ?? undefined, limit });
        return page(
          res.items.map((i) => i.value),
          res.next,
        );
      },
    }),

    Delete: message({
      // Everyone may ask; whether this caller may delete this note depends on the note, so the handler decides.
      allow: 'any',
      payload: z.object({ id: z.uuid() }),
      handle: async ({ id }, ctx) => {
        const note = await ctx.store.get<Note>(COLLECTION, id);
        if (!note) throw new GreenroomError(ErrorCode.NOT_FOUND, 'no such note');
        const admin = ctx.caller.system || ctx.caller.role === 'admin';
        const author = note.uid !== null && note.uid === ctx.caller.uid;
        if (!admin && !author) throw new GreenroomError(ErrorCode.FORBIDDEN, 'only the author or an admin may delete a note');
        await ctx.store.delete(COLLECTION, id);
        ctx.publish('NoteDeleted', { id });
        return { deleted: id };
      },
    }),
  }),
});
