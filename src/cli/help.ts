// The CLI's help texts.

import { defaultWorkers } from '../options.js';
import { MAX_SHARDS } from '../shared/stream-id.js';
import { DEFAULT_BULK_LANES, MAX_BULK_LANES } from '../webrtc/channels.js';

const CONFIG_HELP = `  --config FILE            read the settings from a TOML file (README, "Config file"); flags override it;
                           SIGHUP (or tunnel reload) reads it again without dropping streams
  --print-config           print the effective configuration (PIN masked) and exit
`;

const ICE_HELP = `  --ice-server URL         STUN or TURN server (repeatable): stun:HOST[:PORT] or turn:USER:PASS@HOST[:PORT]
                           (port 3478 by default; percent-encode ':', '@' and '%' in USER and PASS).
                           TURN runs over UDP only: libjuice, the ICE agent of node-datachannel, drops
                           turns: and ?transport=tcp|tls, so they are refused; at most 2 TURN servers
  --ice-relay-only         use only relayed (TURN) candidates: the path always goes through TURN
  --ice-port-range MIN-MAX the UDP ports ICE may use, for a firewall (each session takes 1 + lanes)
  --ice-bind ADDR          bind ICE to ADDR and use only candidates on it, and relayed ones
                           (127.0.0.1 keeps traffic on loopback)
  --no-fallback            when ICE finds no path, fail instead of carrying the tunnel over the
                           signaling WebSocket (the fallback: TCP, slower; direct signaling only)
  --mtu BYTES              the packet size the DataChannels assume, 576-4140; each side states its
                           own and the smaller wins (default 1280, safe across the internet and
                           TURN; with --ice-bind and no --ice-server, the interface's, e.g. 4140 on
                           loopback). Raise it only where the whole path carries such packets
  --lanes N                bulk lanes, 1-${MAX_BULK_LANES} (default ${DEFAULT_BULK_LANES}): PeerConnections that carry full-size data,
                           each stream on one; on a lossy path each lane adds one congestion
                           window's worth. Each side states its own, the smaller wins
`;

const COMMON_HELP = `  --workers N              worker threads, 0-${MAX_SHARDS} (default ${defaultWorkers()}: 0 on up to 2 cores, else one per core; 0 = main thread only)
  --window SIZE            a fixed per-stream flow-control window, e.g. 4MiB (default: automatic, from
                           256KiB growing per round trip to what the path needs, up to 16MiB)
  --keepalive DURATION     keepalive interval, e.g. 1s (the default), 500ms; a peer silent for 5 is gone
  --resume-timeout DURATION  how long open connections wait for a lost peer to come back on a new path
                           (default 1m); 0 resets them at once
  --log-level LEVEL        error, warn, info (default) or debug
  --log-format FORMAT      text (default) or json (one JSON object per line, for journald or Loki)
  --metrics [ADDR:]PORT    serve Prometheus /metrics and /healthz there (ADDR defaults to 127.0.0.1)
  --pid-file PATH          write the process id there (for tunnel reload --pid-file PATH)
  --quiet                  no live status line on the terminal
  --help                   this text
`;

export const HOST_HELP = `Usage: tunnel host [options] --expose NAME=HOST:PORT [--expose ...]
       tunnel host --config FILE [options]

Runs the signaling server (or registers at a rendezvous relay) and exposes the named local TCP
services to clients that know the PIN.

${CONFIG_HELP}
  --expose NAME=HOST:PORT  a service clients may reach by NAME (repeatable; nothing else is ever dialed)
  --listen ADDR:PORT       signaling address (default 127.0.0.1:8765; none with --rendezvous alone)
  --rendezvous URL         register at a rendezvous relay (a PeerJS server, e.g. ws://relay.example:9000,
                           ?key=KEY if it has one) instead of listening: no open port is needed.
                           Prints a code (ID-PIN) for the client's --code
  --rendezvous-id ID       register under this id (default: a random one), so the code stays the same
  --pin PIN                the PIN clients must know (default: a random 8-digit PIN, printed)
  --pin-file PATH          read the PIN from a file (or set TUNNEL_PIN), so it does not show in ps
  --tls-cert FILE          serve wss:// with this certificate (PEM), together with --tls-key FILE
  --tls-key FILE           the certificate's private key (PEM)
${ICE_HELP}${COMMON_HELP}`;

export const CLIENT_HELP = `Usage: tunnel client --connect ws://HOST:PORT --pin PIN --forward [ADDR:]PORT=NAME [options]
       tunnel client --rendezvous URL --code CODE --forward [ADDR:]PORT=NAME [options]
       tunnel client --config FILE [options]

Connects to a host and forwards local TCP ports to the services it exposes.

${CONFIG_HELP}
  --connect URL            the host's signaling URL, e.g. ws://127.0.0.1:8765 or wss://host.example:8765
  --rendezvous URL         find the host through this rendezvous relay (the host's --rendezvous URL)
  --code CODE              the code the host printed (ID-PIN; or TUNNEL_CODE, to keep it out of ps)
  --ca FILE                trust this CA certificate (PEM) for a wss:// host
  --pin PIN                the host's PIN (or --pin-file PATH, or TUNNEL_PIN in the environment)
  --pin-file PATH          read the PIN from a file
  --forward [ADDR:]PORT=NAME  listen on ADDR:PORT (ADDR defaults to 127.0.0.1; PORT must not be 0)
                           and carry each connection to service NAME (repeatable)
${ICE_HELP}${COMMON_HELP}`;

export const MAIN_HELP = `Usage: tunnel <command> [options]

Commands:
  host     expose local TCP services to clients over WebRTC     (tunnel host --help)
  client   forward local ports to a host's services              (tunnel client --help)
  demo     a host, an echo service and a client on loopback, a byte-exact check and a quick benchmark
  bench    the benchmark suite                                   (tunnel bench --help)
  reload   make a running host or client read its config file again: tunnel reload PID | --pid-file FILE
  --version  print the version
`;
