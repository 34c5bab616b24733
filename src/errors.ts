// The one place that makes the tunnel's errors. Each has a stable `code` that tests assert on and
// the CLI prints as one plain sentence (no stack trace).

export type ErrorCode =
  | 'BAD_FLAG'
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
  | 'PEER_FAILED';

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

/** Why a stream was reset: sent in RESET packets, counted, and logged. */
export const ResetReason = {
  UNKNOWN_SERVICE: 'UNKNOWN_SERVICE',
  DIAL_FAILED: 'DIAL_FAILED',
  CONNECT_TIMEOUT: 'CONNECT_TIMEOUT',
  FLOW_VIOLATION: 'FLOW_VIOLATION',
  SEQ_DUPLICATE: 'SEQ_DUPLICATE',
  SEQ_OUT_OF_WINDOW: 'SEQ_OUT_OF_WINDOW',
  REORDER_OVERFLOW: 'REORDER_OVERFLOW',
  BAD_PACKET: 'BAD_PACKET',
  PROTOCOL: 'PROTOCOL',
  SOCKET_ERROR: 'SOCKET_ERROR',
  TOO_MANY_STREAMS: 'TOO_MANY_STREAMS',
  PEER_GONE: 'PEER_GONE',
  PEER_RESET: 'PEER_RESET',
  WORKER_CRASHED: 'WORKER_CRASHED',
  SHUTDOWN: 'SHUTDOWN',
} as const;
export type ResetReason = (typeof ResetReason)[keyof typeof ResetReason];
