// Parsing of the CLI's addresses: "HOST:PORT", "[v6]:PORT", and "PORT" where a default host applies.

import { tunnelError } from './errors.js';

export function parsePort(text: string, flag: string): number {
  if (!/^\d{1,5}$/.test(text)) throw tunnelError('BAD_FLAG', `${flag}: '${text}' is not a port number`);
  const port = Number(text);
  if (port > 65535) throw tunnelError('BAD_FLAG', `${flag}: port ${port} is out of range`);
  return port;
}

export function parseHostPort(text: string, flag: string, defaultHost?: string): { host: string; port: number } {
  const v6 = /^\[([0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?)\]:(\d+)$/.exec(text);
  if (v6?.[1] && v6[2]) return { host: v6[1], port: parsePort(v6[2], flag) };
  if (text.startsWith('[')) throw tunnelError('BAD_FLAG', `${flag}: '${text}' is not [IPv6]:PORT`);
  const at = text.lastIndexOf(':');
  if (at < 0) {
    if (defaultHost === undefined) throw tunnelError('BAD_FLAG', `${flag}: expected HOST:PORT, got '${text}'`);
    return { host: defaultHost, port: parsePort(text, flag) };
  }
  const host = text.slice(0, at);
  if (!host) throw tunnelError('BAD_FLAG', `${flag}: missing host in '${text}'`);
  if (host.includes(':')) throw tunnelError('BAD_FLAG', `${flag}: write an IPv6 address in brackets, e.g. [::1]:${text.slice(at + 1)}`);
  if (!/^[A-Za-z0-9.-]+$/.test(host)) throw tunnelError('BAD_FLAG', `${flag}: '${host}' is not a host name or address`);
  return { host, port: parsePort(text.slice(at + 1), flag) };
}

/** "web=127.0.0.1:8080" */
export function parseExpose(text: string): { name: string; host: string; port: number } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw tunnelError('BAD_FLAG', `--expose: expected NAME=HOST:PORT, got '${text}'`);
  const name = text.slice(0, eq);
  checkServiceName(name, '--expose');
  const { host, port } = parseHostPort(text.slice(eq + 1), '--expose');
  if (port === 0) throw tunnelError('BAD_FLAG', `--expose: service '${name}' needs a port other than 0`);
  return { name, host, port };
}

/** "127.0.0.1:9000=web" or "9000=web" */
export function parseForward(text: string): { host: string; port: number; service: string } {
  const eq = text.lastIndexOf('=');
  if (eq <= 0 || eq === text.length - 1) throw tunnelError('BAD_FLAG', `--forward: expected [ADDR:]PORT=NAME, got '${text}'`);
  const service = text.slice(eq + 1);
  checkServiceName(service, '--forward');
  const { host, port } = parseHostPort(text.slice(0, eq), '--forward', '127.0.0.1');
  if (port === 0) throw tunnelError('BAD_FLAG', `--forward: the port must be explicit, not 0 (workers share it with reusePort)`);
  return { host, port, service };
}

export function checkServiceName(name: string, flag: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    throw tunnelError('BAD_FLAG', `${flag}: service name '${name}' must be 1-64 letters, digits, '.', '_' or '-'`);
  }
}
