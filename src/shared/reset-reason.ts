// Why a stream was reset: sent in RESET packets (as the start of the reason text), counted per code
// in the shard's stats, and logged.

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
