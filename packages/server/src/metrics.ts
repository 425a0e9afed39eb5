import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** Prometheus metrics for GET /metrics. Values are read when scraped, so the hot paths pay nothing. */
export function createMetrics(sources: { connections(): number; asks(): number; queued(): Array<[actor: string, queued: number]> }): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'greenroom_' });
  new Gauge({
    name: 'greenroom_connections',
    help: 'Open WebSocket connections',
    registers: [registry],
    collect() {
      this.set(sources.connections());
    },
  });
  new Counter({
    name: 'greenroom_asks_total',
    help: 'Asks received from clients',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.asks());
    },
  });
  new Gauge({
    name: 'greenroom_mailbox_queued',
    help: 'Messages queued in an actor mailbox, not yet started (a backlog that grows means the actor cannot keep up)',
    labelNames: ['actor'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [actor, queued] of sources.queued()) this.set({ actor }, queued);
    },
  });
  return registry;
}
