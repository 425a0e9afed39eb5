// A page that uses the bundled client the way an app would: cookie login on the same origin, then asks.
import { GreenroomClient, login } from './greenroom-client.js';

let client = null;
const states = [];

window.gr = {
  async login(username, password) {
    const session = await login(location.origin, { username, password });
    return { uid: session.uid, accessExpiresAt: session.accessExpiresAt };
  },
  async start(accessExpiresAt) {
    client = new GreenroomClient({ url: location.origin, auth: { mode: 'cookie', accessExpiresAt }, backoff: { baseMs: 100, capMs: 1000 } });
    client.on('open', () => states.push('open'));
    client.on('reconnecting', () => states.push('reconnecting'));
    client.on('closed', () => states.push('closed'));
    await client.connect();
    await new Promise((resolve) => (client.state === 'open' ? resolve() : client.on('open', resolve)));
  },
  ask: (actor, type, payload) => client.ask(actor, type, payload),
  refresh: () => client.refresh(),
  state: () => client.state,
  states: () => states.slice(),
  refreshRequests: () => client.refreshRequests,
  waitOpen: () => new Promise((resolve) => (client.state === 'open' ? resolve() : client.on('open', resolve))),
};
document.getElementById('state').textContent = 'ready';
