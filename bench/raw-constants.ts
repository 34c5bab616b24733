// The raw baseline's settings: the tunnel's own, so the baseline is the transport the tunnel gets.

/** One DATA packet's worth: a 64 KiB message minus the tunnel's 16-byte header (bytes). */
export const RAW_MESSAGE_BYTES = 64 * 1024 - 16;
/** Stop sending above this bufferedAmount (bytes): the tunnel's channelHighWaterBytes. */
export const HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** onBufferedAmountLow fires below this (bytes): the tunnel's channelLowWaterBytes. */
export const LOW_WATER_BYTES = 1024 * 1024;
/** Polling fallback in case onBufferedAmountLow is missed (ms), as the dispatcher does. */
export const DRAIN_POLL_MS = 20;
/** ICE stays on loopback: bound to it, and only candidates on it are exchanged. */
export const ICE_BIND = '127.0.0.1';
