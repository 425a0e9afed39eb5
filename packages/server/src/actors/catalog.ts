/**
 * `GET /actors`: what a caller may send and subscribe to, as JSON Schema (zod's own conversion of the schemas the
 * server validates with), so clients in other languages can be written from it. A caller sees only the messages
 * its role may send and the events it may subscribe to; internal messages never appear.
 */
import { z } from 'zod';
import { allows, type ActorDefinition, type Caller } from './define.js';

export interface ActorCatalog {
  actors: Array<{
    name: string;
    messages: Array<{ type: string; payload: unknown }>;
    events: Array<{ event: string; payload: unknown }>;
  }>;
}

/** Schemas are fixed once an actor is defined: each is converted once. */
const converted = new WeakMap<z.ZodType, unknown>();

/**
 * A message's payload as a client sends it (before defaults and transforms), an event's as it is pushed. What JSON
 * Schema cannot say (a custom check, a transform) is left open rather than failing the whole answer.
 */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): unknown {
  let out = converted.get(schema);
  if (out === undefined) {
    out = z.toJSONSchema(schema, { io, unrepresentable: 'any' });
    converted.set(schema, out);
  }
  return out;
}

export function catalog(definitions: Iterable<ActorDefinition<unknown>>, caller: Caller): ActorCatalog {
  const actors: ActorCatalog['actors'] = [];
  for (const def of definitions) {
    const messages = Object.entries(def.messages)
      .filter(([, m]) => !m.internal && allows(m.allow, caller))
      .map(([type, m]) => ({ type, payload: jsonSchema(m.payload, 'input') }));
    const events = allows(def.subscribers, caller) ? Object.entries(def.events).map(([event, schema]) => ({ event, payload: jsonSchema(schema, 'output') })) : [];
    if (messages.length > 0 || events.length > 0) actors.push({ name: def.name, messages, events });
  }
  return { actors };
}
