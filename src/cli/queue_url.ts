/**
 * The `--queue` URL of `balloonlab sweep` and `balloonlab worker`, checked before
 * anything connects: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://` for
 * TLS. Credentials and TLS come from this URL only (never from a sweep file); messages
 * show it with the password replaced by `***`. Kept apart from queue.ts so the CLI
 * loads BullMQ only for the commands that use it.
 */
import { InputError } from '../sim/errors.js';

/** A bad --queue URL: exit 2. */
export class QueueUrlError extends InputError {}

/** Redis could not be used (unreachable, refused us, lost), or a run could not be run on the queue: exit 4. */
export class QueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueError';
  }
}

export type QueueTarget = {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** The URL as messages show it (password hidden). */
  display: string;
};

const FORM = 'redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss://... for TLS';

export function parseQueueUrl(option: string, text: string): QueueTarget {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new QueueUrlError(`${option}: "${text}" is not a URL (expected ${FORM})`);
  }
  const bad = (what: string) => new QueueUrlError(`${option}: ${what} (expected ${FORM})`);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw bad(`unknown scheme "${u.protocol.replace(/:$/, '')}"`);
  if (!u.hostname) throw bad('no host');
  if (u.search || u.hash) throw bad('no ?query or #fragment: give everything in the URL itself');
  const port = u.port === '' ? 6379 : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${u.port} is not from 1 to 65535`);
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,9}$/.test(path)) throw bad(`database "${path}" is not a number`);
  const db = path === '' ? 0 : Number(path);
  let username: string | undefined, password: string | undefined;
  try {
    username = u.username ? decodeURIComponent(u.username) : undefined;
    password = u.password ? decodeURIComponent(u.password) : undefined;
  } catch {
    throw bad('user or password is not valid percent-encoding');
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const cred = username !== undefined || password !== undefined ? `${u.username}${password !== undefined ? ':***' : ''}@` : '';
  return {
    host, port, db, tls: u.protocol === 'rediss:',
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    display: `${u.protocol}//${cred}${u.hostname}:${port}/${db}`,
  };
}
