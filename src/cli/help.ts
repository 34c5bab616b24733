// The CLI's help texts.

import { defaultWorkers } from '../options.js';
import { MAX_SHARDS } from '../shared/stream-id.js';

export const HOST_HELP = `Usage: tunnel host [options] --expose NAME=HOST:PORT [--expose ...]
       tunnel host --config FILE [options]

Runs the signaling server and exposes the named local TCP services to clients that know the PIN.

  --config FILE            read the settings from a TOML file (README, "Config file"); flags override it;
                           SIGHUP (or tunnel reload) reads it again without dropping streams
  --print-config           print the effective configuration (PIN masked) and exit

  --expose NAME=HOST:PORT  a service clients may reach by NAME (repeatable; nothing else is ever dialed)
  --listen ADDR:PORT       signaling address (default 127.0.0.1:8765)
  --pin PIN                the PIN clients must know (default: a random 8-digit PIN, printed)
  --pin-file PATH          read the PIN from a file (or set TUNNEL_PIN), so it does not show in ps
  --tls-cert FILE          serve wss:// with this certificate (PEM), together with --tls-key FILE
  --tls-key FILE           the certificate's private key (PEM)
  --workers N              worker threads, 0-${MAX_SHARDS} (default ${defaultWorkers()}, the available parallelism; 0 = main thread only)
  --ice-server URL         STUN/TURN server, e.g. stun:stun.example.org:3478 (repeatable)
  --ice-bind ADDR          bind ICE to ADDR and use only candidates on it (127.0.0.1 keeps traffic on loopback)
  --window SIZE            per-stream flow-control window, e.g. 1MiB (the default), 4MiB, 512KiB
  --keepalive DURATION     keepalive interval, e.g. 1s (the default), 500ms; a peer silent for 5 is gone
  --log-level LEVEL        error, warn, info (default) or debug
  --log-format FORMAT      text (default) or json (one JSON object per line, for journald or Loki)
  --metrics [ADDR:]PORT    serve Prometheus /metrics and /healthz there (ADDR defaults to 127.0.0.1)
  --pid-file PATH          write the process id there (for tunnel reload --pid-file PATH)
  --quiet                  no live status line on the terminal
  --help                   this text
`;

export const CLIENT_HELP = `Usage: tunnel client --connect ws://HOST:PORT --pin PIN --forward [ADDR:]PORT=NAME [options]
       tunnel client --config FILE [options]

Connects to a host and forwards local TCP ports to the services it exposes.

  --config FILE            read the settings from a TOML file (README, "Config file"); flags override it;
                           SIGHUP (or tunnel reload) reads it again without dropping streams
  --print-config           print the effective configuration (PIN masked) and exit

  --connect URL            the host's signaling URL, e.g. ws://127.0.0.1:8765 or wss://host.example:8765
  --ca FILE                trust this CA certificate (PEM) for a wss:// host
  --pin PIN                the host's PIN (or --pin-file PATH, or TUNNEL_PIN in the environment)
  --pin-file PATH          read the PIN from a file
  --forward [ADDR:]PORT=NAME  listen on ADDR:PORT (ADDR defaults to 127.0.0.1; PORT must not be 0)
                           and carry each connection to service NAME (repeatable)
  --workers N              worker threads, 0-${MAX_SHARDS} (default ${defaultWorkers()}; 0 = main thread only)
  --ice-server URL         STUN/TURN server (repeatable)
  --ice-bind ADDR          bind ICE to ADDR and use only candidates on it
  --window SIZE            per-stream flow-control window, e.g. 1MiB (the default), 4MiB, 512KiB
  --keepalive DURATION     keepalive interval, e.g. 1s (the default), 500ms; a peer silent for 5 is gone
  --log-level LEVEL        error, warn, info (default) or debug
  --log-format FORMAT      text (default) or json (one JSON object per line, for journald or Loki)
  --metrics [ADDR:]PORT    serve Prometheus /metrics and /healthz there (ADDR defaults to 127.0.0.1)
  --pid-file PATH          write the process id there (for tunnel reload --pid-file PATH)
  --quiet                  no live status line on the terminal
  --help                   this text
`;

export const MAIN_HELP = `Usage: tunnel <command> [options]

Commands:
  host     expose local TCP services to clients over WebRTC     (tunnel host --help)
  client   forward local ports to a host's services              (tunnel client --help)
  demo     a host, an echo service and a client on loopback, a byte-exact check and a quick benchmark
  bench    the benchmark suite                                   (tunnel bench --help)
  reload   make a running host or client read its config file again: tunnel reload PID | --pid-file FILE
  --version  print the version
`;
