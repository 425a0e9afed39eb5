import { z } from 'zod';
import type { Page } from '@greenroom/protocol';

/** `limit` defaults to 100 and is capped at 500 (docs/protocol.md, Lists). */
export const MAX_LIMIT = 500;
export const limitSchema = z.number().int().min(1).default(100).transform((n) => Math.min(n, MAX_LIMIT));
export const cursorSchema = z.string().max(256).nullable().default(null);
export const pageRequest = z.object({ cursor: cursorSchema, limit: limitSchema });

export function page<T>(items: T[], nextCursor: string | null): Page<T> {
  return { items, nextCursor };
}

/** Every item of a paged read, page after page (for the server's own full scans: cleanup, stats, the CLI's list). */
export async function allPages<T>(read: (cursor: string | null) => Promise<{ items: T[]; next: string | null }>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const res: { items: T[]; next: string | null } = await read(cursor);
    out.push(...res.items);
    cursor = res.next;
  } while (cursor !== null);
  return out;
}
