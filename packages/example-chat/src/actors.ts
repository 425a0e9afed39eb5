/**
 * The app's actors, for `greenroom serve --actors` and `serve({ actors })`, and the app's type for the client.
 */
import type { GreenroomApp } from '@greenroom/server';
import { ChatRoom } from './chat-room.js';

export const actors = [ChatRoom] as const;

/** What the browser's client takes: `createClient<App>(…)`. Types only: no server code reaches the bundle. */
export type App = GreenroomApp<typeof actors>;
