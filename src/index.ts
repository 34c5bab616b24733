// The library: everything the CLI does is one of these calls.
export { startHost, randomPin, type HostOptions, type HostHandle } from './host.js';
export { startClient, type ClientOptions, type ClientHandle } from './client.js';
export { releaseDataChannelLibrary } from './peer.js';
export { defaultConfig, type DataPlaneConfig } from './config.js';
export { TunnelError, type ErrorCode } from './errors.js';
export type { Service, Forward } from './messages.js';
export { tuneGarbageCollector } from './gc.js';
