/**
 * The chat's client side, for a browser page or a Node script: the typed Greenroom client and three calls. It
 * imports the app's type only (`import type`): no server code reaches a bundle.
 */
import { createClient, type ClientOptions, type GreenroomClient } from '@greenroom/client';
import type { App } from './actors.js';
import type { ChatMessage } from './chat-room.js';

export type ChatClient = GreenroomClient<App>;

export function chatClient(options: ClientOptions): ChatClient {
  return createClient<App>(options);
}

/** Joins a room and hears its messages (`onMessage`), now and after every reconnect; returns the latest messages. */
export async function enterRoom(client: ChatClient, room: string, onMessage: (m: ChatMessage) => void): Promise<ChatMessage[]> {
  await client.ask('ChatRoom', 'Join', { room });
  client.on('Posted', (payload) => onMessage(payload.message), { from: 'ChatRoom', topic: room });
  await client.subscribe('ChatRoom', { topic: room });
  return (await client.ask('ChatRoom', 'History', { room, limit: 50 })).items;
}

export function say(client: ChatClient, room: string, text: string): Promise<ChatMessage> {
  return client.ask('ChatRoom', 'Post', { room, text });
}
