import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs, one line per event. Redaction is a second line of defence: the code never passes
 * tokens or passwords to the logger in the first place.
 */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.GREENROOM_LOG_LEVEL ?? 'info',
      base: { service: 'greenroom' },
      redact: {
        paths: ['password', '*.password', 'token', '*.token', 'accessToken', 'refreshToken', '*.accessToken', '*.refreshToken', 'req.headers.authorization', 'req.headers.cookie', 'secret', '*.secret'],
        censor: '[redacted]',
      },
    },
    options.destination ?? process.stdout,
  );
}

export type { Logger };
