// A page served from another origin than the Greenroom server (the server's URL comes in ?api=): it logs in with
// CORS, then connects with tokens (tickets) or with cookies, the way docs/client.md describes.
import { GreenroomClient, login } from './greenroom-client.js';

const api = new URLSearchParams(location.search).get('api');
let client = null;
const states = [];

async function open(auth) {
  client = new GreenroomClient({ url: api, auth, backoff: { baseMs: 100, capMs: 1000 } });
  client.on('open', () => states.push('open'));
  client.on('reconnecting', () => states.push('reconnecting'));
  client.on('closed', () => states.push('closed'));
  await client.connect();
  await new Promise((resolve) => (client.state === 'open' ? resolve() : client.on('open', resolve)));
}

window.xo = {
  async login(username, password) {
    const session = await login(api, { username, password });
    return session;
  },
  startTokens: (tokens) => open({ mode: 'tokens', tokens }),
  startCookie: (accessExpiresAt) => open({ mode: 'cookie', accessExpiresAt }),
  /** A login that must fail from an origin not allowed: its error's name and message. */
  async tryLogin(username, password) {
    try {
      await login(api, { username, password });
      return 'succeeded';
    } catch (err) {
      return `${err.name}: ${err.message}`;
    }
  },
  ask: (actor, type, payload) => client.ask(actor, type, payload),
  refresh: () => client.refresh(),
  state: () => client.state,
  states: () => states.slice(),
  refreshRequests: () => client.refreshRequests,
  waitOpen: () => new Promise((resolve) => (client.state === 'open' ? resolve() : client.on('open', resolve))),
  close: () => client?.close(),
};
document.getElementById('state').textContent = 'ready';
