import { z } from 'zod';
import type { Page } from '@greenroom/protocol';

/** `limit` defaults to 100 and is capped at 500 (SPEC §9). */
export const MAX_LIMIT = 500;
export const limitSchema = z.number().int().min(1).default(100).transform((n) => Math.min(n, MAX_LIMIT));
export const cursorSchema = z.string().max(256).nullable().default(null);
export const pageRequest = z.object({ cursor: cursorSchema, limit: limitSchema });

export function page<T>(items: T[], nextCursor: string | null): Page<T> {
  return { items, nextCursor };
}
