// The library: everything the CLI does is one of these calls.
export { startHost, randomPin, type HostOptions, type HostHandle, type HostStats, type PeerInfo } from './host.js';
export { startClient, type ClientOptions, type ClientHandle, type ClientStats } from './client.js';
export { createMetrics, type Metrics, type MetricsSource, type SideStats } from './metrics/registry.js';
export { startMetricsServer, type MetricsServer, type Health } from './metrics/server.js';
export { releaseDataChannelLibrary } from './webrtc/peer.js';
export { defaultConfig, type DataPlaneConfig } from './shared/limits.js';
export { TunnelError, type ErrorCode } from './errors.js';
export type { Service, Forward } from './shared/thread-messages.js';
export type { DataPlaneStats } from './dataplane/data-plane.js';
export { tuneGarbageCollector } from './gc.js';
export { describePath, type SessionPath, type IcePath } from './webrtc/path.js';
