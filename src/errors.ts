// The one place that makes the tunnel's start-up errors. Each has a stable `code` that tests assert on and
// the CLI prints as one plain sentence (no stack trace).

export type ErrorCode =
  | 'BAD_FLAG'
  | 'BAD_CONFIG'
  | 'NODE_TOO_OLD'
  | 'PORT_IN_USE'
  | 'LISTEN_FAILED'
  | 'HOST_UNREACHABLE'
  | 'WRONG_PIN'
  | 'LOCKED_OUT'
  | 'VERSION_MISMATCH'
  | 'SIGNALING_PROTOCOL'
  | 'SIGNALING_AUTH'
  | 'SIGNALING_TIMEOUT'
  | 'PEER_FAILED'
  /** ICE found no path between the two sides (and no fallback took over) */
  | 'ICE_FAILED'
  /** the rendezvous relay cannot be reached, or refused us (bad key, full) */
  | 'RELAY_UNREACHABLE'
  /** the rendezvous id is registered by someone else */
  | 'RELAY_ID_TAKEN'
  /** no host is registered under the code's id */
  | 'UNKNOWN_CODE';

export class TunnelError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'TunnelError';
    this.code = code;
  }
}

export function tunnelError(code: ErrorCode, message: string): TunnelError {
  return new TunnelError(code, message);
}

/** A listen() that failed, as the one sentence a user needs: "in use" is its own code. */
export function listenError(host: string, port: number, err: NodeJS.ErrnoException): TunnelError {
  return err.code === 'EADDRINUSE'
    ? tunnelError('PORT_IN_USE', `cannot listen on ${host}:${port}: the port is in use`)
    : tunnelError('LISTEN_FAILED', `cannot listen on ${host}:${port}: ${err.message}`);
}

/** The exit status of a bad flag or config file (EX_CONFIG of sysexits.h): a service manager should not
 *  restart on it (src/cli/service/systemd: RestartPreventExitStatus=78). Other start-up failures exit 2. */
export const EXIT_CONFIG = 78;
