// The ssh -L baseline's server side, as the loopback bench (./ssh.ts) and the lab bench
// (./lab/baselines.ts) both run it: sshd from a throw-away directory with its own host key, a client
// key pair, authorized_keys and config (no PAM, StrictModes off because the keys live in a temp dir,
// root login by key only), and the one cipher both compare against.

import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hasCommand } from './lab/netns.js';

/** AES-GCM is what ssh negotiates by default on hardware with AES instructions. */
export const SSH_CIPHER = 'aes128-gcm@openssh.com';
export const SSHD = '/usr/sbin/sshd';

/** The ssh tools this machine lacks, each with its Debian package (empty: all there). */
export function missingSshTools(): string[] {
  return [
    ...(existsSync(SSHD) ? [] : [`${SSHD} (Debian openssh-server)`]),
    ...(hasCommand('ssh') ? [] : ['ssh (Debian openssh-client)']),
    ...(hasCommand('ssh-keygen') ? [] : ['ssh-keygen (Debian openssh-client)']),
  ];
}

/** Writes keys and an sshd_config into `dir`; the config's path and the client's private key. */
export function prepareSshd(dir: string, options: { port: number; listen: string; comment: string }): { config: string; key: string } {
  const key = path.join(dir, 'client_key');
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', options.comment, '-f', file], { stdio: 'ignore', timeout: 10_000 });
  keygen(path.join(dir, 'host_key'));
  keygen(key);
  execFileSync('cp', [`${key}.pub`, path.join(dir, 'authorized_keys')]);
  const config = path.join(dir, 'sshd_config');
  writeFileSync(config, [
    `Port ${options.port}`, `ListenAddress ${options.listen}`, 'AddressFamily inet',
    `HostKey ${path.join(dir, 'host_key')}`, `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password', 'PubkeyAuthentication yes', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'AllowTcpForwarding yes',
    'X11Forwarding no', 'PrintMotd no', 'UseDNS no', `Ciphers ${SSH_CIPHER}`, 'LogLevel ERROR', '',
  ].join('\n'));
  return { config, key };
}
